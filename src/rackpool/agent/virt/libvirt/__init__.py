"""The ``libvirt`` virt driver (KVM guests with a config drive). NOT IMPLEMENTED YET:
only its settings (``config.py``) exist; selecting it fails with DriverUnavailable."""
