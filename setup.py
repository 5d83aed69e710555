"""fer-edge: facial-expression recognition on Raspberry Pi and Jetson, published over MQTT."""

from setuptools import setup

setup(
    name="fer-edge",
    version="0.1.0",
    description="Facial-expression recognition daemon for edge devices: camera, Haar, int8 LiteRT, MQTT",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=["edge", "edge.models", "edge.systemd", "convert"],
    # The shipped model lives in models/ at the top of the repository and installs as
    # edge.models, so a plain (non-editable) install finds it with importlib.resources;
    # the systemd unit (systemd/) installs as edge.systemd for `fer-edge install-service`.
    package_dir={"edge.models": "models", "edge.systemd": "systemd"},
    package_data={"edge.models": ["*.tflite", "labels.txt"], "edge": ["config.example.toml", "static/*"],
                  "edge.systemd": ["*.service", "*.conf"]},
    install_requires=[
        "ai-edge-litert>=1.2",
        "numpy>=2",
        "opencv-python-headless>=4.8,<5",  # 5.x wheels have no CascadeClassifier nor Haar files
        "paho-mqtt>=2,<3",
        "tomli>=2; python_version<'3.11'",
    ],
    extras_require={
        "convert": ["tensorflow-cpu>=2.16", "matplotlib>=3.7"],
        "picamera2": ["picamera2>=0.3.17"],
        "test": ["pytest>=8", "scikit-image>=0.22", "cryptography>=42", "jinja2>=3"],
    },
    entry_points={"console_scripts": ["fer-edge=edge.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
