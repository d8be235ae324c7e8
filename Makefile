# The README's two commands are `make run` (the whole course, full mode) and `make test`.
PY := .venv/bin/python

.PHONY: setup run test lab images slides fit-slides bench lint clean-checkpoints searches

setup:
	@bash scripts/setup.sh

run: setup  ## execute every notebook in place, full mode, storing outputs and timings; then fit the slides to them
	$(PY) scripts/run_notebooks.py
	$(PY) scripts/sync_notebooks.py
	@$(MAKE) --no-print-directory fit-slides

test: setup  ## lint, unit tests, and every notebook re-run by nbval in smoke mode, one process per core (at most 4)
	.venv/bin/ruff check .
	KD_SMOKE=1 $(PY) -m pytest -n auto --maxprocesses 4

lab: setup  ## open the notebooks in Jupyter Lab
	.venv/bin/jupyter lab notebooks/

images: setup  ## redraw the diagrams in images/
	$(PY) scripts/draw_images.py
	$(PY) scripts/sync_notebooks.py

slides: setup  ## export every notebook as a reveal.js deck into slides/, starting offline (scripts and MathJax in slides/lib)
	$(PY) scripts/build_slides.py

fit-slides: setup  ## start a subslide wherever a slide runs past a 1280x720 screen, measured in Chromium
	@if command -v chromium >/dev/null; then \
	  measured=$$(mktemp -d) && \
	  $(PY) tests/browser/deck_check.py --out $$measured --report $$measured/report.json notebooks/[0-9][0-9]_*.ipynb >/dev/null && \
	  $(PY) scripts/build_slides.py --fit $$measured/report.json; status=$$?; rm -rf $$measured; exit $$status; \
	else echo "slides not fitted: Chromium is missing (make setup, as root, installs it)"; fi

bench: setup  ## the data-path, distillation-speed, cohort-against-torch.func and optimiser benchmarks
	$(PY) benchmarks/bench_data_pipeline.py
	$(PY) benchmarks/bench_distillation_epoch.py
	$(PY) benchmarks/bench_cohort_func.py
	$(PY) benchmarks/bench_optimizer.py

searches: setup  ## every search in experiments/, resumably (a complete one trains nothing); see experiments/README.md
	$(PY) experiments/run_all.py

clean-checkpoints:  ## forget every trained model (notebooks retrain what they need)
	rm -rf checkpoints/
