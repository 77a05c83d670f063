"""The consult domain and the WebRTC signaling side of psc119.

Pure, synchronous modules (no I/O, no clock reads; times come in as aware
datetimes):

``ids``          ConsultId, UserId
``errors``       the exception tree (SignalingError and its subclasses)
``urgency``      Urgency, respond-by/expiry DeadlinePolicy
``specialty``    Specialty codes with Indonesian/English labels
``patient``      PatientSummary, VitalSigns, Sex
``outcome``      Outcome (SOAP notes + decision)
``consult``      ConsultState, ConsultEvent, TRANSITIONS, transition(), ServiceType, Consult
``routing``      OnCallRoster, waiting_queue, overdue, escalation, sweep
``members``      MemberRole, PeerKind
``negotiation``  polite/impolite and offerer per pair of peers
``tokens``       join tokens (SHA-256 digests, constant-time compare)
``outbox``       the short per-member queue for an absent member
``sdp``          SDP and ICE candidate checks
``messages``     the signaling message schema, parse() and serialise()
``turn``         TURN REST API credentials and the RTCIceServer list
``room``         Room: membership, presence, consent, relay decisions
``access``       who may read, accept, decline, cancel, complete, join, add files, chat
``bandwidth``    the send-side controller: bitrate, picture size and mode for a weak link

The aiortc side, the only modules here that do I/O:

``ice_hosts``    pin the host addresses aioice gathers candidates on
``media``        a synthetic camera and tone, or a file, as outgoing tracks
``pair``         PeerLink: one RTCPeerConnection towards one other member
``send_encoders`` the encoders a peer sends with, sized and paced by ``bandwidth``
``link_quality`` LinkQuality: applies ``bandwidth`` to one connection once a second
``peer``         ConsultPeer: the Python kiosk client (websocket session, recovery)
``recorder``     ConsultRecorder: the consented recorder participant
"""
