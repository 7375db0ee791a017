"""Play Twilio's (or Exotel's) side of a phone call against a running Switchboard server.

Command line::

    python simulate.py --url http://127.0.0.1:8000 --say "What are your hours?"

Dial-out: the server places the call through Twilio's Calls API. With
``--dialout`` the simulator serves that API itself (``--twilio-api``, where the
server's ``TWILIO_API_BASE_URL`` must point), posts ``/dialout``, receives the
call the server creates, and plays the callee: the TwiML's Stream, and the
status callbacks Twilio would send::

    python simulate.py --url http://127.0.0.1:8000 --dialout --to +15551234567 \
        --api-key "$DIALOUT_API_KEY" --twilio-api http://127.0.0.1:8765 --say "Hello?"

Exotel's Voicebot applet instead of Twilio::

    python simulate.py --provider exotel --url http://127.0.0.1:8000 --say "Hello?"

The library lives in the ``simulator`` package; this module re-exports its
public API, so ``from simulate import SimulatedCall`` keeps working.
"""

import sys

from simulator import *  # noqa: F403  (re-exported: the public API)
from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
