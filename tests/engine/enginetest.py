"""Constants shared by the real-engine tests (a uniquely named module, unlike conftest)."""
import os
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGISTRY = "127.0.0.1:5000"
REGISTRY_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
LOCAL_IMAGE = "condor-docker-test/busybox:local"
RUN = uuid.uuid4().hex[:8]   # this session's pushed images are named apart from any other run's
MB = 1024 * 1024
