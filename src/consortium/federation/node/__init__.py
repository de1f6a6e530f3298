"""An organization's site: the ``consortium node`` agent (registers with the hub, heartbeats,
starts a SuperNode per assigned run). The local dataset store it advertises, and the ClientApp
reads, is ``consortium.federation.app.datasets``."""
