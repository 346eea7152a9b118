"""The shared pure core: what the kiosk and the authority both need.

Pass format and verification, risk policy and decisions, record ids, sealing, the bundle and
manifest formats, key files, logging and the command runner. Nothing here opens a camera,
GPIO pins, a screen, a database or the network; time and keys are passed in. The authority
(`sync.central`) imports only this package from `kiosk`.
"""
