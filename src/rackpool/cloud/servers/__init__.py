"""Server creation in three steps, each safe with several controllers on one database.

request.py     the Nova create body parsed into a typed, frozen ``ServerRequest``
placement.py   hosts and addresses for the servers of one request (scheduler + address
               pool), re-checked under row locks so two controllers placing at once
               never over-commit a host
repository.py  the ``servers`` table as typed values (``Server``, ``NewServer``)
"""
