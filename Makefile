# condor_docker: two commands on a fresh machine (see README.md)
#   make demo   set everything up and run examples/hello.sub end to end
#   make test   set everything up and run the whole test suite (every tier; CI runs this)
# One tier (README "Test tiers"): make unit | test-engine | test-agent | test-security |
#   test-pool | test-roles | test-conformance | test-vm   (PYTEST_ARGS="-x -k name" to narrow)
VENV   ?= /opt/condor_docker/venv
PYTHON := $(VENV)/bin/python
DEMO   := demo-output
PYTEST := $(PYTHON) -m pytest -q $(PYTEST_ARGS)

.PHONY: setup engine podman install dev dist htcondor demo test unit pool pool-test bench bench-pool clean \
        test-unit test-engine test-agent test-security test-pool test-roles test-conformance test-vm

setup: engine podman dev htcondor

engine:
	bash scripts/engine-up.sh

# rootful Podman's API for the engine tests' second engine (docs/ENGINES.md); without it (exit 3) they skip
podman:
	bash scripts/podman-up.sh || [ $$? -eq 3 ]

# a production venv: condor_docker and its runtime dependencies (constraints.txt), no test tools
install:
	VENV=$(VENV) WITH_TESTS=0 bash scripts/setup-venv.sh

# the project's test venv: install, plus pytest and hypothesis
dev:
	VENV=$(VENV) WITH_TESTS=1 bash scripts/setup-venv.sh

# a wheel and an sdist of the committed tree in dist/ (version: condor_docker/core/version.py)
dist:
	PYTHON=$(PYTHON) bash scripts/dist.sh

# A real HTCondor for tests/htcondor_pool (unpacked once into /opt/condor_docker/htcondor-<version>);
# without one (exit 3) the pool tests skip and say why.
htcondor:
	bash scripts/htcondor-up.sh >/dev/null || [ $$? -eq 3 ]

demo: setup
	rm -rf $(DEMO) && mkdir -p $(DEMO) && cp examples/*.sub examples/*.sh examples/*.txt $(DEMO)/ 2>/dev/null || true
	cd $(DEMO) && $(VENV)/bin/condor_docker run hello.sub
	@echo "--- $(DEMO)/hello.*.out:"; cat $(DEMO)/hello.*.out
	@echo "--- $(DEMO)/hello.log (HTCondor job event log):"; cat $(DEMO)/hello.log

test: setup
	VENV=$(VENV) bash scripts/pool-test-deps.sh
	CONDOR_DOCKER_VM_HTCONDOR=$${CONDOR_DOCKER_VM_HTCONDOR:-25.0.13} $(PYTEST) tests

# -- one tier each (tests/<tier>, marker <tier>) ------------------------------------
unit test-unit: dev
	$(PYTEST) tests/unit

test-engine: engine podman dev
	$(PYTEST) tests/engine

test-agent: engine dev
	$(PYTEST) tests/agent

test-security: engine dev
	$(PYTEST) tests/security

# a real HTCondor personal pool, once per HTCondor series found (pool-test: the old name)
test-pool pool-test: setup
	$(PYTEST) tests/htcondor_pool

test-roles: setup
	VENV=$(VENV) bash scripts/pool-test-deps.sh
	$(PYTEST) tests/pool_roles

# HTCondor's own docker universe and ours on the same corpus, compared (tests/conformance/README.md)
test-conformance: setup
	$(PYTEST) tests/conformance

# the cgroup-v2 Debian 12 guest under qemu (tests/vm/README.md): both HTCondor series;
# `make test` runs it on the LTS only (CONDOR_DOCKER_VM_HTCONDOR), to keep CI well under its budget
test-vm: dev
	$(PYTEST) tests/vm

# a whole HTCondor pool in containers on this machine (docs/POOL-IN-CONTAINERS.md)
pool: setup
	VENV=$(VENV) bash scripts/pool-test-deps.sh
	bash scripts/pool-base-image.sh
	POOL_IMAGE=condor-docker-test/pool:dev POOL_BASE=condor-docker-test/debian-base:12 POOL_WHEELS=1 POOL_REBUILD=1 \
	  PIP=$(VENV)/bin/pip POOL_HTCONDOR=$(firstword $(wildcard ../shared/htcondor/htcondor-*.tar.xz /work/shared/htcondor/htcondor-*.tar.xz)) \
	  POOL_EXECUTE_ROOT=/var/tmp/condor-pool/execute bash examples/pool/up.sh 1

bench: setup
	$(PYTHON) bench/trivial_job.py

# ours vs HTCondor's own docker universe on two real pools that take turns job by job (minutes)
bench-pool: setup
	$(PYTHON) bench/pool.py

clean:
	rm -rf $(DEMO) build *.egg-info .pytest_cache

