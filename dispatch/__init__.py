"""The PSC 119 dispatch domain: pure values and decisions, no I/O.

Modules, one concept each: ``geo`` (points, geodesic distance), ``priority``
(triage colours), ``triage`` (the editable call-type table), ``outcome``,
``capabilities``, ``units`` and ``status`` (the unit status machine),
``call`` and ``incident`` (the incident lifecycle), ``doctrine`` (what a
call needs), ``assignment`` (the decisions to send, withdraw, re-offer,
advance, release and close), ``eta`` (travel-time
models), ``staleness``, ``recommend`` (the reference scan) and ``index``
(the fast nearest-unit index), ``duplicates``, ``metrics``, ``timeline``,
``eido`` (export), ``errors`` (the exception tree) and ``ids``.
"""
