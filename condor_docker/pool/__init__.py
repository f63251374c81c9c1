"""HTCondor pool roles as containers: `condor_docker pool-node` and `condor_docker health`.

roles.py (role -> config text, pure), injection.py (site config from files, dirs,
URLs), security.py (the pool's secret -> signing key and this node's IDTOKEN),
entrypoint.py (the container's PID 1: config, then condor_master -f, clean stop),
rolehealth.py (is this node's role really working), sshaccess.py (optional login
to the access point).  See docs/POOL-IN-CONTAINERS.md.
"""
