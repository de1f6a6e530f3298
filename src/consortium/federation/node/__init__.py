"""An organization's site: the ``consortium node`` agent (registers with the hub, heartbeats,
starts a SuperNode per assigned run) and the local dataset store the ClientApp reads."""
