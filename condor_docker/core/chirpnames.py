"""The job attributes the launcher sets through Chirp, named once.

Delayed Chirp attributes must start with `Chirp` (the starter's
_CHIRP_DELAYED_UPDATE_PREFIX).  The launcher sets them (starter/chirp.py,
starter/launch.py); the access-point transform reads them (core/configfiles.py).
No imports: the launcher pays nothing for this module at start.
"""

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
