"""Python SDK. ``consortium.Client`` (``consortium.sdk.client``) is the entry point; each stage's
resource group lives in its own module here and is attached to every client by ``Client.__init__``."""
