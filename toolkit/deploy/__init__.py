"""Getting a device ready to run the toolkit.

``doctor`` checks a machine -- runtime backend, cameras, picamera2, Coral Edge TPU runtime and device, Raspberry Pi
throttling, disk and memory -- and names the exact install step for each missing piece (``toolkit doctor``). The
install script and systemd unit for a Raspberry Pi live in the repository's ``deploy/raspberry-pi/``.
"""
