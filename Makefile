# Two commands do everything on a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment in .venv and installs requirements.txt into it.

PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SPEECH_ENGINES := $(VENV)/.speech-engines
export PYTHONPATH := $(CURDIR)
# TensorFlow's C++ logs (CUDA probes on CPU machines) are noise here.
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: venv demo serve study test test-slow bench clean

# AAPL's 19 adjusted closes of 2022-12-01 to 2022-12-28, oldest first, from the bundled data.
DEMO_PRICES := 147.88,147.38,146.20,142.50,140.53,142.24,141.75,144.07,145.05,142.79,136.10,134.12,131.99,131.92,135.06,131.85,131.48,129.65,125.67
# Four words of test voices (never trained on) with silence between, for the keyword app's `listen`.
DEMO_RECORDING := /tmp/rnn-suite-keywords.wav

venv: $(INSTALLED) $(SPEECH_ENGINES)

$(INSTALLED): requirements.txt
	test -x $(PYTHON) || $(PYTHON_BASE) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

# The speech app synthesizes its corpus with Debian's espeak-ng, flite and festival. This is the one step that
# installs them (loading data never does): apt-get, when make runs as root and they are missing; otherwise it
# prints the command and the speech corpus tests skip. The stamp is written only once they are all there, so a
# later run as root still installs them.
$(SPEECH_ENGINES): $(INSTALLED)
	$(PYTHON) -m data.speech install-engines --stamp $@

# Two reviews the model never saw, and an empty text.
DEMO_REVIEWS := "A moving, beautifully acted film." "Dull, overlong and badly written." ""
# A phrase of the test book Ruth (1:16) and two sentences the Bible never says.
DEMO_ENGLISH := "Where you go, I will go; and where you stay, I will stay." "The children went to the city in the morning." "My brother loves his wife."

# The main job: every app trained with its --demo profile (the smallest training that gets these inputs right),
# exported, and asked a few raw questions, each after what a correct answer looks like. tests/test_demo_profiles.py
# (make test-slow) checks the answers to these very inputs.
demo: venv
	$(PYTHON) -m apps.sentiment train --demo --reports-dir reports/demo
	@echo "Expected: positive, negative (the empty text gets an answer too)"
	$(PYTHON) -m apps.sentiment predict $(DEMO_REVIEWS)
	$(PYTHON) -m apps.stock_forecast train --demo --reports-dir reports/demo
	@echo "Expected: five forecasts near the last close, 125.67, each inside its 80% interval"
	$(PYTHON) -m apps.stock_forecast predict "$(DEMO_PRICES)"
	$(PYTHON) -m apps.translation train --demo --reports-dir reports/demo
	@echo "Expected (references): 'donde quiera que tú fueres, iré yo; y donde quiera que vivieres, viviré.' (Reina-Valera 1909),"
	@echo "  'Los niños fueron a la ciudad por la mañana.', 'Mi hermano ama a su esposa.', and '' for the empty text"
	$(PYTHON) -m apps.translation predict $(DEMO_ENGLISH) ""
	$(PYTHON) -m apps.speech_keywords train --demo --reports-dir reports/demo
	$(PYTHON) -m apps.speech_keywords demo-recording $(DEMO_RECORDING) --demo
	@echo "Expected: the four words above, each within about 0.2 s of its time, and nothing else"
	$(PYTHON) -m apps.speech_keywords listen $(DEMO_RECORDING)
	@echo "Exports (TF Serving layout): saved_models/<app>/ for sentiment, stock_forecast, translation, speech_keywords"
	@echo "Reports: reports/demo/<app>/metrics.md (and PNG plots)"
	@echo "Full training (the models of the README's results): python -m apps.<app> train"
	@echo "Serving every export on 127.0.0.1 (gRPC 8500, REST 8501), REST and gRPC requests to each app:"
	$(PYTHON) -m serving --model_config_file saved_models/models.config > /tmp/rnn-suite-serve.log 2>&1 & \
	  server=$$!; trap "kill $$server" EXIT; \
	  for attempt in $$(seq 60); do curl -sf localhost:8501/v1/models/stock_forecast > /dev/null && curl -sf localhost:8501/v1/models/translation > /dev/null && curl -sf localhost:8501/v1/models/speech_keywords > /dev/null && break; sleep 1; done; \
	  $(PYTHON) -m serving.client sentiment "A moving, beautifully acted film." && \
	  $(PYTHON) -m serving.client sentiment --grpc "Dull, overlong and badly written." && \
	  $(PYTHON) -m serving.client stock_forecast "$(DEMO_PRICES)" && \
	  $(PYTHON) -m serving.client stock_forecast --grpc "$(DEMO_PRICES)" && \
	  $(PYTHON) -m serving.client translation $(DEMO_ENGLISH) && \
	  $(PYTHON) -m serving.client translation --grpc "My brother loves his wife." && \
	  $(PYTHON) -m apps.speech_keywords listen $(DEMO_RECORDING) --server 127.0.0.1:8500

# The local TF-Serving-compatible server on every export in saved_models/ (Ctrl-C stops it).
serve: venv
	$(PYTHON) -m serving --model_config_file saved_models/models.config

# The notes' vanishing-gradient section, measured in two settings (about 5.5 minutes on 2 busy cores).
study: venv
	$(PYTHON) -m benchmarks.vanishing_gradient

test: venv
	$(PYTHON) -m pytest

test-slow: venv
	$(PYTHON) -m pytest -m slow

# The speed benchmark also compares against PyTorch's CPU build when it can be installed; the project
# itself never needs torch. `listen` on an hour of audio (about 2 minutes on 2 cores) needs a speech export,
# so it runs where `python -m apps.speech_keywords train` has made one.
bench: venv
	$(PYTHON) -m pip install --quiet torch==2.13.0 || echo "torch not installed: the PyTorch column stays empty"
	$(PYTHON) -m benchmarks.rnn_speed
	if [ -d saved_models/speech_keywords ]; then $(PYTHON) -m benchmarks.listen_speed; \
	  else echo "No speech export: train one (python -m apps.speech_keywords train) for benchmarks.listen_speed"; fi

clean:
	rm -rf $(VENV)
