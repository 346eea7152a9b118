"""The device's adapters, each behind a small interface and taking plain values: frame
sources (picamera2, OpenCV, image folders, 2D scanners), the QR decoder, the signal (gpiozero,
pin factory handed in) and the optional screen."""
