"""``ray start`` for a non-head node on 127.0.0.1 of the same machine (a test helper; run as a script).

Usage: ``python _ray_loopback_node.py start --address=127.0.0.1:<port> --node-ip-address=127.0.0.1 ...``

Ray 2.60 on Linux rewrites ``127.0.0.1`` in ``ray start --address`` / ``--node-ip-address`` into
the machine's network address (``services.resolve_ip_for_localhost``; ray-project/ray#59110),
so a second node would dial the GCS on an address it does not listen on, and bind its own servers
there. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` stops the rewrite but makes ``ray start`` refuse a
non-head node. This launcher keeps the given loopback addresses and lets the node start; the
processes it starts inherit ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and stay on 127.0.0.1.
A multi-machine cluster needs none of this: give each node its real address.
"""

import os
import sys

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray._private import ray_constants, services  # noqa: E402

ray_constants.ENABLE_RAY_CLUSTER = True  # allow `ray start --address` (a non-head node) in this process
services.resolve_ip_for_localhost = lambda host: host  # keep 127.0.0.1 as given

from ray.scripts.scripts import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "ray"
    sys.exit(main())
