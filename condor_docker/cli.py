"""The one `condor_docker` command; each subcommand is a few lines over a module's main().

Subcommands import their module lazily, so the hooks and `advertise`, which run
often and under time budgets, never pay for the Docker SDK they do not use.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one line of help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("condor_docker.local.runner", "run a docker-universe submit file on this machine, no HTCondor needed"),
    "agent": ("condor_docker.agent.server", "the trusted daemon that alone talks to the Docker engine"),
    "advertise": ("condor_docker.starter.advertise", "startd cron: print HasDocker, DockerVersion, the image cache"),
    "prepare-job": ("condor_docker.starter.prepare_job", "PREPARE_JOB hook: validate, pull, rewrite the job to run our launcher"),
    "launch": ("condor_docker.starter.launch", "the job process: run the job's container through the agent"),
    "job-exit": ("condor_docker.starter.job_exit", "JOB_EXIT hook: make sure the job's container is gone"),
    "status": ("condor_docker.admin.status", "the agent's jobs, containers, pulls in flight, image cache, health"),
    "ssh-shell": ("condor_docker.starter.ssh_shell", "condor_ssh_to_job session: enter the job's container through the agent"),
    "doctor": ("condor_docker.admin.doctor", "check this machine's engine, agent and configuration"),
    "config": ("condor_docker.admin.configgen", "print the config.d files generated from the knob table"),
    "pool-node": ("condor_docker.pool.entrypoint", "a pool node container's entrypoint: config for its role, condor_master -f"),
    "health": ("condor_docker.pool.rolehealth", "is this pool node's role really working (exit 0/1, one line)"),
}

EX_USAGE = 64


def _usage() -> str:
    lines = ["usage: condor_docker <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else EX_USAGE
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"condor_docker: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return EX_USAGE
    module = importlib.import_module(SUBCOMMANDS[command][0])
    entry = getattr(module, "main_" + command.replace("-", "_"), None) or module.main
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
