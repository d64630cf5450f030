# meldbot: `make rehearse` runs the simulated graph end to end; `make test` runs the suite.
# Both create .venv on first use (Python 3.11: the ROS 2 wheels are cp311).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.meldbot-installed

# DDS discovery never leaves this machine; each run gets its own domain unless one is given.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp
export MUJOCO_GL ?= egl
ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 80 + 120 )))
export ROS_DOMAIN_ID

.PHONY: venv test test-all rehearse bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; meldbot needs Python 3.11 (ROS 2 Kilted wheels are cp311)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build from the local wheel (a bare `torch` would pull GBs of CUDA).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[ros,learn,dev]'
	$(PY) -m meldbot.setup_check --fix
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

rehearse: $(STAMP)
	$(VENV)/bin/meldbot rehearse $(ARGS)

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build runs .pytest_cache
