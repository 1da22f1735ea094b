"""The model manager of the local server: which versions of which models are loaded, as TF Serving does it.

Every `--file_system_poll_wait_seconds` it lists each model's base path: integer folders are versions.
The version policy (latest by default, or all, or specific versions, from `models.config`) picks the
versions to serve; new ones are loaded, removed ones unloaded, and a version that fails to load is
reported in its status while the versions already loaded keep serving. A request holds its own
reference to the version it runs on, so a swap never breaks a request in flight.
"""

import dataclasses
import pathlib
import re
import threading

import tensorflow as tf
from google.protobuf import json_format, text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import warmup

MODEL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


# The canonical status (gRPC's code, and TF Serving's `status` label in its metrics) of each HTTP status we answer.
STATUS_OF_HTTP_CODE = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "INVALID_ARGUMENT", 411: "INVALID_ARGUMENT",
                       413: "RESOURCE_EXHAUSTED", 504: "DEADLINE_EXCEEDED"}  # fmt: skip


class ServingError(Exception):
    """An error a client caused or asked about; `code` is the HTTP status (400, 404, 413), `status` the canonical
    one that gRPC answers (by default the HTTP status's, e.g. FAILED_PRECONDITION where TF Serving says so)."""

    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_OF_HTTP_CODE.get(code, "INVALID_ARGUMENT")


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """How every version is loaded, from the server's flags, as TF Serving would load it.

    Args:
        batching: a `serving.batching.BatchingConfig` (which versions are batched, and how), or None: none.
        warmup: replay the version's warmup requests before it becomes AVAILABLE (`--enable_model_warmup`).
    """

    batching: object = None
    warmup: bool = True


def read_signature_defs(path):
    """`{name: SignatureDef}` of the SavedModel in folder `path`, as TF Serving reads them from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
    return dict(saved_model.meta_graphs[0].signature_def)


class Version:
    """One version of a model: its state (as in TF Serving's ModelVersionStatus) and, once loaded, its signatures."""

    def __init__(self, number, path):
        self.number = number
        self.path = path
        self.state = "LOADING"
        self.error = ""
        self.signatures = {}
        self.signature_defs = {}
        self.loaded = None
        self.batcher = None

    def load(self, options=LoadOptions()):
        """Loads the SavedModel and, where `options.batching` says TF Serving would batch this version, its
        `batcher`; then runs its warmup requests (serving/warmup.py), whose failure fails the load, as in TF
        Serving."""
        try:
            self.loaded = tf.saved_model.load(str(self.path))
            self.signatures = dict(self.loaded.signatures)
            self.signature_defs = read_signature_defs(self.path)
            self.batcher = options.batching.batcher_for(self.path) if options.batching is not None else None
            if options.warmup:
                self.warm_up()
            self.state = "AVAILABLE"
        except Exception as error:  # noqa: BLE001 -- any failure is reported in the status, never raised
            self.state, self.error, self.loaded = "END", f"{type(error).__name__}: {error}", None

    def warm_up(self):
        """Runs each request of the version's warmup file, as TF Serving does before serving it."""
        for request in warmup.read_warmup_requests(self.path):
            signature_name = request.model_spec.signature_name or "serving_default"
            if signature_name not in self.signatures:
                raise ValueError(f"A warmup request names a signature the version lacks. Received: {signature_name!r}; "
                                 f"available: {sorted(self.signatures)}")  # fmt: skip
            self.run(signature_name, {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()})

    def run(self, signature_name, tensors):
        """`{name: np.ndarray}` of one signature on checked input tensors, through the batcher if this version
        has one, as TF Serving's session runs it."""
        function = self.signatures[signature_name]
        if self.batcher is not None:
            return self.batcher.run(signature_name, function, tensors)
        return {name: value.numpy() for name, value in function(**tensors).items()}

    def status(self):
        ok = not self.error
        return {
            "version": str(self.number),
            "state": self.state,
            "status": {"error_code": "OK" if ok else "UNKNOWN", "error_message": self.error},
        }


class Model:
    def __init__(self, name, base_path, policy="latest", specific=(), labels=None):
        if not MODEL_NAME.match(name):
            raise ValueError(f"Model names are letters, digits, '_', '.', '-'. Received: {name!r}")
        self.name = name
        self.base_path = pathlib.Path(base_path)
        self.policy = policy
        self.specific = set(specific)
        self.labels = dict(labels or {})
        self.versions = {}  # number -> Version, loaded or failed
        self.lock = threading.Lock()

    def wanted_versions(self):
        found = sorted(
            int(path.name) for path in self.base_path.glob("*") if path.is_dir() and path.name.isdigit()
        ) if self.base_path.is_dir() else []
        if self.policy == "all":
            return found
        if self.policy == "specific":
            return [number for number in found if number in self.specific]
        return found[-1:]

    def refresh(self, options=LoadOptions()):
        wanted = self.wanted_versions()
        for number in wanted:
            if number not in self.versions:  # a version that failed stays reported, not retried
                version = Version(number, self.base_path / str(number))
                version.load(options)
                with self.lock:
                    self.versions[number] = version
        keep = set(wanted)
        with self.lock:
            if not any(self.versions[number].state == "AVAILABLE" for number in wanted):
                # The newest version failed or is gone: the last one that works keeps serving.
                on_disk = [
                    number
                    for number, version in self.versions.items()
                    if version.state == "AVAILABLE" and version.path.is_dir()
                ]
                if on_disk:
                    keep.add(max(on_disk))
            for number in list(self.versions):
                if number not in keep:
                    del self.versions[number]  # in-flight requests keep their own reference

    def available(self):
        with self.lock:
            return {number: version for number, version in self.versions.items() if version.state == "AVAILABLE"}

    def resolve(self, version=None, label=None):
        """The version a request names (a number, a label, or none for the latest available)."""
        if label is not None:
            if label not in self.labels:
                raise ServingError(404, f"Unknown version label {label!r} of model {self.name!r}")
            version = self.labels[label]
        available = self.available()
        if version is None:
            if not available:
                raise ServingError(404, f"Model {self.name!r} has no available version under {self.base_path}")
            return available[max(available)]
        if version not in available:
            raise ServingError(404, f"Version {version} of model {self.name!r} is not available")
        return available[version]

    def statuses(self, version=None):
        with self.lock:
            versions = dict(self.versions)
        if version is not None:
            if version not in versions:
                raise ServingError(404, f"Version {version} of model {self.name!r} is not loaded")
            versions = {version: versions[version]}
        return [versions[number].status() for number in sorted(versions, reverse=True)]


def models_from_config_file(path):
    """Models of a TF Serving `model_config_list` text proto (`--model_config_file`)."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(pathlib.Path(path).read_text(), config)
    except (OSError, text_format.ParseError) as error:
        raise ValueError(f"Cannot read the model config file {path}. Received: {error}") from None
    return models_from_config(config, pathlib.Path(path).resolve().parent)


def models_from_config(config, local_root=None):
    """Models of a `ModelServerConfig` proto (a config file's, or a HandleReloadConfigRequest's).

    A config written for the TF Serving container names paths like /models/<app>; where such a path
    does not exist here, the model is looked for in `local_root/<name>` (beside the config file).
    """
    models = []
    for entry in config.model_config_list.config:
        policy, specific = "latest", ()
        choice = entry.model_version_policy.WhichOneof("policy_choice")
        if choice == "all":
            policy = "all"
        elif choice == "specific":
            policy, specific = "specific", tuple(entry.model_version_policy.specific.versions)
        base_path = pathlib.Path(entry.base_path)
        if local_root is not None and not base_path.exists() and (local_root / entry.name).exists():
            base_path = local_root / entry.name
        models.append(Model(entry.name, base_path, policy, specific, dict(entry.version_labels)))
    return models


def signature_def_map_json(version):
    """The signature defs as TF Serving's metadata API returns them (SignatureDefMap in JSON)."""
    return {
        name: json_format.MessageToDict(signature_def, preserving_proto_field_name=True)
        for name, signature_def in version.signature_defs.items()
    }


class ModelManager:
    """The served models, their versions kept up to date every `poll_seconds` and loaded with `options`
    (`LoadOptions`: batching)."""

    def __init__(self, models, poll_seconds=1.0, options=LoadOptions()):
        self.models = {model.name: model for model in models}
        self.poll_seconds = poll_seconds
        self.options = options
        self.stopping = threading.Event()
        self.thread = None

    def refresh(self):
        for model in list(self.models.values()):
            model.refresh(self.options)

    def start(self):
        self.refresh()
        if self.poll_seconds and self.poll_seconds > 0:
            self.thread = threading.Thread(target=self.poll, daemon=True, name="version-poller")
            self.thread.start()

    def poll(self):
        while not self.stopping.wait(self.poll_seconds):
            self.refresh()

    def stop(self):
        self.stopping.set()

    def replace_models(self, models):
        """HandleReloadConfigRequest: serve exactly these models from now on."""
        for model in models:
            model.refresh(self.options)
        self.models = {model.name: model for model in models}

    def model(self, name):
        if not isinstance(name, str) or not MODEL_NAME.match(name) or name not in self.models:
            raise ServingError(404, f"Servable not found for request: unknown model {name!r}")
        return self.models[name]
