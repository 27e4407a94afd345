"""Ray environment: quiet, loopback-only, no usage stats, no token files in the home directory.

Imported before ``ray`` everywhere, because Ray reads these variables at import time.
"""

from __future__ import annotations

import os

RAY_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # otherwise Ray 2.60 writes a token into ~/.ray and warns at every init
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keeps every Ray listener on 127.0.0.1
    "RAY_AIR_NEW_OUTPUT": "0",  # Tune's new console output ignores verbose=0
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # trials keep the driver's working directory
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # trials.csv is the record; no tfevents clutter
    "RAY_DEDUP_LOGS": "0",
}
for _name, _value in RAY_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
