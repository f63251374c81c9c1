"""The job attributes the launcher sets through Chirp, named once.

Delayed Chirp attributes must start with `Chirp` (the starter's
_CHIRP_DELAYED_UPDATE_PREFIX).  The launcher sets them (starter/chirp.py,
starter/launch.py); the access-point transform reads them (core/configfiles.py).
Only `re`: the launcher pays nothing for this module at start.
"""
import re

HOLD_REASON = "ChirpCondorDockerHoldReason"
HOLD_SUBCODE = "ChirpCondorDockerHoldSubCode"
OOM = "ChirpCondorDockerOOM"
REQUEUE_REASON = "ChirpCondorDockerRequeueReason"

# what the container used, set once at the end (docs/USAGE-ACCOUNTING.md): usage key -> attribute
USAGE = {"cpu_user_s": "ChirpCondorDockerRemoteUserCpu", "cpu_sys_s": "ChirpCondorDockerRemoteSysCpu",
         "peak_memory_mb": "ChirpCondorDockerMemoryUsage", "disk_kb": "ChirpCondorDockerDiskUsage",
         "network_in_bytes": "ChirpCondorDockerNetworkInBytes",
         "network_out_bytes": "ChirpCondorDockerNetworkOutBytes"}
MEMORY_USAGE = USAGE["peak_memory_mb"]   # the container's exact peak, MB

# container_service_names: each service's host port is the job attribute <name>_HostPort,
# so a service name must be an attribute name (core/request.container_services checks it)
HOST_PORT_SUFFIX = "_HostPort"
SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
