# The README's two commands, and the install step both of them rely on.
.PHONY: run test install bench

run:     ## install what is missing, put `ignis` on the PATH, run the server
	bash scripts/run.sh

test:    ## run every check and test
	bash scripts/test.sh

install: ## build ignis (release) and install it as /usr/local/bin/ignis
	bash scripts/install.sh

bench:   ## run the benchmarks, write bench/results/
	bash bench/run.sh
