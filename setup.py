"""fer-edge: facial-expression recognition on Raspberry Pi and Jetson, published over MQTT."""

from setuptools import setup

WEB = ["waitress>=3.0.2,<4", "werkzeug>=3.1,<4", "prometheus_client>=0.20,<1"]

setup(
    name="fer-edge",
    version="0.1.0",
    description="Facial-expression recognition daemon for edge devices: camera, YuNet, int8 LiteRT, MQTT",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # The folders keep their names (edge/, convert/, models/, systemd/); the installed import
    # names carry the project's: fer_edge (the device side, with models/ and systemd/ as its
    # package data) and fer_convert (the host side, TensorFlow).
    packages=["fer_edge", "fer_edge.config", "fer_edge.faces", "fer_edge.sources", "fer_edge.mqtt",
              "fer_edge.web", "fer_edge.tools",
              "fer_edge.bench", "fer_edge.models", "fer_edge.systemd", "fer_convert"],
    package_dir={"fer_edge": "edge", "fer_edge.models": "models", "fer_edge.systemd": "systemd",
                 "fer_convert": "convert"},
    package_data={"fer_edge": ["config.example.toml", "py.typed"], "fer_edge.web": ["static/*", "static/vendor/*"],
                  "fer_edge.models": ["*.tflite", "labels.txt", "*.onnx", "*.LICENSE", "*.xml"],
                  "fer_edge.systemd": ["*.service", "*.conf"]},
    install_requires=[
        "ai-edge-litert>=1.2",
        # LiteRT's own floor; the code uses no numpy-2-only API. JetPack's OpenCV needs numpy 1.x,
        # the OpenCV wheels 2.x: make check-arm64 runs both.
        "numpy>=1.23.2",
        "opencv-python-headless>=4.8,<5",  # 5.x wheels have no CascadeClassifier nor Haar files
        "paho-mqtt>=2,<3",
        "tomli>=2; python_version<'3.11'",
    ],
    extras_require={
        "convert": ["tensorflow-cpu>=2.16", "matplotlib>=3.7", "scikit-learn>=1.3"],
        "picamera2": ["picamera2>=0.3.17"],
        # the opt-in web page (http.enabled): imported only when it is on
        "web": WEB,
        "test": ["pytest>=8", "scikit-image>=0.22", "cryptography>=42", "jinja2>=3",
                 "mypy>=1.10", "ruff>=0.5", "pylint>=3", "hypothesis>=6.100", *WEB],
    },
    entry_points={"console_scripts": ["fer-edge=fer_edge.cli:main", "fer-convert=fer_convert.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
