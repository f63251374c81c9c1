#!/bin/sh
# Transferred into the job's scratch dir and run there as ./script.sh
echo "script running as $(id -u):$(id -g) in $(pwd) with args: $*"
echo "scratch dir is $_CONDOR_SCRATCH_DIR"
