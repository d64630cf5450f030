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

.PHONY: venv test test-all rehearse bench lint clean meld-reduced

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

# MELD's reduced recipe on the WidowX cable twin, about 2 h on a 2-core CPU (docs/meld.md): stage 1 with the
# shaped reward (config/train_meld_stage1.yaml, 50 min), stage 2 with the sparse one and a head per port
# (config/train_meld_gated.yaml, 60 min), then the held-out evaluation on 160 fresh tasks, episode 2 against
# episode 1 and against a belief reset. SEED is the training draw of both stages (the tasks stay the split's);
# STAGE1=RUN_DIR reuses a finished stage 1 instead of training one. Set on the command line only (plain `=`):
# a SEED or OUT left in the shell's environment must not redirect a run. The configs' budgets are wall time; a
# slower machine reaches fewer env steps in them (docs/meld.md, thirty-third section): STAGE1_STEPS=33600
# STEPS=80000 budget both stages in env steps instead (STEPS counts stage 1's too), as the recorded runs reached.
# TEACHER=true_port adds the true-port teacher to stage 2 (docs/meld.md, thirty-seventh and thirty-eighth
# sections): every collected trial is labelled with the privileged way to its own port, cloned at weight 300 until
# 52k env steps (the heads learn to reach every port), then at 3 (the reward brings the push in back).
# Its runs go to runs/meld/reduced_true_port_seed$(SEED); STAGE1=runs/meld/reduced_seed0/stage1 reuses the plain
# recipe's stage 1. FOCUS=1 also draws stage 2's handed trials to the ports whose handed trials fail most
# (`true_port_focus`, docs/meld.md, fortieth section: it taught training seed 1 the port its actor could not push
# into); its runs go to runs/meld/reduced[_true_port]_focus_seed$(SEED). A folder that already holds a run is
# refused (train's --resume continues one).
SEED   = 0
OUT    = runs/meld/reduced$(TEACHER:%=_%)$(FOCUS:1=_focus)_seed$(SEED)
STAGE1 =
STAGE1_STEPS =
STEPS  =
TEACHER =
FOCUS  =
steps_budget = $(if $(1),--set max_env_steps=$(1) --set time_budget_min=0)
teacher_options_true_port = --set teacher=true_port --set agent.teacher_bc_weight=300 \
  --set teacher_clone_radius=0.004 --set "teacher_bc_schedule=[[52000, 3]]"
meld-reduced: $(STAMP)
	@case "$(SEED)" in ''|*[!0-9]*) echo "error: SEED must be a whole number >= 0, got '$(SEED)'"; exit 2;; esac
	@case "$(TEACHER)" in ''|true_port) ;; *) echo "error: TEACHER must be true_port or empty, got '$(TEACHER)'"; exit 2;; esac
	@case "$(FOCUS)" in ''|1) ;; *) echo "error: FOCUS must be 1 or empty, got '$(FOCUS)'"; exit 2;; esac
	@for v in "STAGE1_STEPS=$(STAGE1_STEPS)" "STEPS=$(STEPS)"; do case "$${v#*=}" in *[!0-9]*|0) \
	  echo "error: $${v%%=*} must be a whole number of env steps > 0, got '$${v#*=}'"; exit 2;; esac; done
	$(if $(and $(STAGE1),$(STAGE1_STEPS)),@echo "error: STAGE1_STEPS has no effect with STAGE1 (stage 1 is reused, \
	  not trained): drop one of them"; exit 2)
	$(if $(STAGE1),@test -f $(STAGE1)/checkpoint.pt || { echo "error: STAGE1=$(STAGE1) holds no checkpoint.pt"; exit 2; },\
	$(PY) -m belief.meld.train --config config/train_meld_stage1.yaml --out $(OUT)/stage1 --set training_seed=$(SEED) \
	  $(call steps_budget,$(STAGE1_STEPS)))
	$(PY) -m belief.meld.train --config config/train_meld_gated.yaml --out $(OUT)/gated \
	  --set warm_start=$(or $(STAGE1),$(OUT)/stage1) --set training_seed=$(SEED) $(call steps_budget,$(STEPS)) \
	  $(teacher_options_$(TEACHER)) $(if $(FOCUS),--set true_port_focus=true)
	$(PY) -m belief.meld.evaluate $(OUT)/gated/checkpoint.pt --split fresh --tasks 160 --trials 1 \
	  --reset-control --hold-episode-port --out $(OUT)/gated/eval_fresh160_hold_rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build runs .pytest_cache
