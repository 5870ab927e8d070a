# The README's two commands.
.PHONY: run test bench

run:   ## install what is missing and run the server
	bash scripts/run.sh

test:  ## run every check and test
	bash scripts/test.sh

bench: ## run the benchmarks, write bench/results/
	bash bench/run.sh
