"""TF Serving's config messages that the tensorflow-serving-api package does not ship, rebuilt with the server's
field names and numbers, so that our config files parse, and fail on a misspelled field, as TF Serving's do."""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

PACKAGE = "tensorflow.serving"
Field = descriptor_pb2.FieldDescriptorProto
KINDS = {  # a field's kind -> (type, type name, label)
    "int64 value": (Field.TYPE_MESSAGE, ".google.protobuf.Int64Value", Field.LABEL_OPTIONAL),
    "string value": (Field.TYPE_MESSAGE, ".google.protobuf.StringValue", Field.LABEL_OPTIONAL),
    "repeated int64": (Field.TYPE_INT64, None, Field.LABEL_REPEATED),
    "bool": (Field.TYPE_BOOL, None, Field.LABEL_OPTIONAL),
    "string": (Field.TYPE_STRING, None, Field.LABEL_OPTIONAL),
}


def rebuilt_messages(proto_file, messages):
    """`{message name: class}` from `messages`, `{message name: [(field name, number, kind)]}`, where a kind is a
    key of KINDS or the name of another of `messages`; `proto_file` is the server's .proto path."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(name=proto_file, package=PACKAGE, syntax="proto3",
                                              dependency=["google/protobuf/wrappers.proto"])  # fmt: skip
    for message_name, fields in messages.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind in fields:
            kind_type, type_name, label = KINDS.get(kind, (Field.TYPE_MESSAGE, f".{PACKAGE}.{kind}", Field.LABEL_OPTIONAL))
            message.field.add(name=name, number=number, type=kind_type, label=label, **({"type_name": type_name} if type_name else {}))
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in messages}


def batching_parameters_class():
    """`tensorflow.serving.BatchingParameters` (session_bundle_config.proto), the server's own where installed."""
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    return rebuilt_messages("tensorflow_serving/servables/tensorflow/session_bundle_config.proto", {"BatchingParameters": [
        ("max_batch_size", 1, "int64 value"),
        ("batch_timeout_micros", 2, "int64 value"),
        ("max_enqueued_batches", 3, "int64 value"),
        ("num_batch_threads", 4, "int64 value"),
        ("thread_pool_name", 5, "string value"),
        ("allowed_batch_sizes", 6, "repeated int64"),
        ("pad_variable_length_inputs", 7, "bool"),
    ]})["BatchingParameters"]  # fmt: skip


def monitoring_config_class():
    """`tensorflow.serving.MonitoringConfig` (monitoring_config.proto), read with --monitoring_config_file."""
    try:
        from tensorflow_serving.config import monitoring_config_pb2

        return monitoring_config_pb2.MonitoringConfig
    except ImportError:
        pass
    return rebuilt_messages("tensorflow_serving/config/monitoring_config.proto", {
        "PrometheusConfig": [("enable", 1, "bool"), ("path", 2, "string")],
        "MonitoringConfig": [("prometheus_config", 1, "PrometheusConfig")],
    })["MonitoringConfig"]  # fmt: skip
