"""Development and test helpers: a simulated TDX platform and demo submissions.

Nothing on a production path imports this package; the server's development mode and the CLI's ``demo``
command import it where they need it. A simulated platform is not a TEE and proves nothing.
"""
