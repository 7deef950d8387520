"""`python -m agent_runner.cli`: the same as the `run-agents` command."""

from agent_runner.cli import main

if __name__ == "__main__":
    main()
