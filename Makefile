# wazo.maintenance_mode — every entry point. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
LAB_NAME ?= wmm
LAB_DIR ?= $(if $(filter wmm,$(LAB_NAME)),.lab,.lab-$(LAB_NAME))
export LAB_NAME LAB_DIR
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
COLL_LINK := .collections/ansible_collections/wazo/maintenance_mode

.PHONY: help venv host image lab-up lab-down lab-status standin lint ansible-lint sanity unit kamailio-tests \
        molecule test demo build artifact ee clean

help:
	@echo "make test      lint + sanity + unit tests + real-Kamailio tests + molecule scenarios (what CI runs)"
	@echo "make demo      lab up, setup.yml, upgrade.yml under SIP load, result"
	@echo "make lab-up    three-host lab (proxy, primary, secondary), writes $(LAB_DIR)/inventory.yml"
	@echo "make lab-down  remove the lab"

# --- the machine -------------------------------------------------------------------------------
$(VENV)/.stamp: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip 2>/dev/null
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/ansible --version >/dev/null
	touch $@

$(COLL_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

venv: $(VENV)/.stamp $(COLL_LINK)

host:
	lab/host-setup.sh

.cache/image: lab/build-image.sh | host
	mkdir -p .cache
	lab/build-image.sh > $@.tmp && mv $@.tmp $@

# The real Asterisk 22 (Debian sid) for the stacks, in /var/lib/wazo-mm-lab/asterisk-root/<recipe hash>.
.cache/asterisk-root: lab/build-asterisk-root.sh | host
	mkdir -p .cache
	lab/build-asterisk-root.sh > $@.tmp && mv $@.tmp $@

image: host .cache/image .cache/asterisk-root

# --- the lab -----------------------------------------------------------------------------------
lab-up: venv image
	lab/lab.sh up "$$(cat .cache/image)" "$$(cat .cache/asterisk-root)"
	$(MAKE) --no-print-directory standin

standin: venv
	@if [ -f tests/lab/standin.yml ]; then \
	  $(BIN)/ansible-playbook -i $(LAB_DIR)/inventory.yml tests/lab/standin.yml; fi

lab-down:
	lab/lab.sh down

lab-status:
	lab/lab.sh status

# --- checks ------------------------------------------------------------------------------------
ansible-lint: venv
	$(BIN)/ansible-lint --offline -q

sanity: venv
	tests/sanity.sh

lint: docs-check ansible-lint sanity artifact

# Role READMEs: the variables section is generated from meta/argument_specs.yml (tests/docs/role_docs.py).
.PHONY: docs docs-check
docs: venv
	$(PY) tests/docs/role_docs.py

docs-check: venv
	$(PY) tests/docs/role_docs.py --check

unit: venv
	$(BIN)/pytest -q tests/unit

kamailio-tests: venv host
	$(BIN)/pytest -q tests/kamailio
	$(BIN)/pytest -q tests/ha_check

molecule: venv lab-up
	tests/molecule.sh

# A full run starts from fresh labs: state left by an earlier run (upgraded stacks, locks) is not reused. The
# faults scenario runs on a second lab beside the others (tests/molecule-ci.sh); `make molecule` runs them all
# in turn on one lab.
test: lint unit kamailio-tests venv image
	tests/molecule-ci.sh

demo: venv lab-up
	tests/demo.sh

# Two labs as two sites of one inventory (tests/lab/fleet.py), the fleet proofs through ansible-runner.
# Not part of `make test` (a second lab and three fleet runs do not fit CI's time); the labs stay up afterwards.
.PHONY: fleet-test
fleet-test: venv image
	LAB_NAME=s1 LAB_OCTET=71 lab/lab.sh up "$$(cat .cache/image)" "$$(cat .cache/asterisk-root)"
	LAB_NAME=s1 LAB_OCTET=71 LAB_DIR=.lab-s1 $(MAKE) --no-print-directory standin
	LAB_NAME=s2 LAB_OCTET=72 lab/lab.sh up "$$(cat .cache/image)" "$$(cat .cache/asterisk-root)"
	LAB_NAME=s2 LAB_OCTET=72 LAB_DIR=.lab-s2 $(MAKE) --no-print-directory standin
	FLEET_LABS=.lab-s1,.lab-s2 $(BIN)/pytest -q tests/fleet

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path .build

# The artifact installs and its playbooks run by FQCN (wazo.maintenance_mode.setup / .upgrade / .status / .switch).
artifact: build
	rm -rf .build/colls
	cd /tmp && $(CURDIR)/$(BIN)/ansible-galaxy collection install --no-deps --force -p $(CURDIR)/.build/colls \
	  $(CURDIR)/.build/wazo-maintenance_mode-$$(awk '/^version:/{print $$2}' $(CURDIR)/galaxy.yml).tar.gz >/dev/null
	cp inventory.example .build/inventory.yml
	cd /tmp && for p in setup upgrade status switch; do \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build/colls:$(CURDIR)/$(VENV)/lib/python3.11/site-packages \
	  $(CURDIR)/$(BIN)/ansible-playbook -i $(CURDIR)/.build/inventory.yml wazo.maintenance_mode.$$p --syntax-check; done

# The execution environment's build context (ansible-builder v3) in .build/ee; the image build itself needs the
# base image's registry (not reachable from the lab machine): ansible-builder build, or podman build .build/ee.
ee: build
	mkdir -p .build/ee-src
	cp .build/wazo-maintenance_mode-$$(awk '/^version:/{print $$2}' galaxy.yml).tar.gz .build/ee-src/wazo-maintenance_mode.tar.gz
	$(BIN)/ansible-builder create -f execution-environment.yml -c .build/ee

clean: lab-down
	rm -rf .build .cache .collections $(VENV)
