"""condor_docker's version, in one place: setup.cfg reads it (`attr:`), `condor_docker --version` prints it."""

VERSION = "0.1.0"
