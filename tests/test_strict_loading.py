"""Strict weight loading (mmbackbones/loading.py, mmbackbones/loading_hooks.py): a checkpoint
that does not fit the model is an error naming the mismatches, in ``tools/test.py``,
``load_from``, ``--resume`` and our backbones' ``Pretrained`` init; the lenient mode loads
what fits and says so; a checkpoint that fits still loads."""

from __future__ import annotations

import itertools
import logging
import os.path as osp

import pytest
import torch
from conftest import REPO, run_tool
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import nn

import mmbackbones  # noqa: F401  (registers the hooks' registry on import of the hooks)
from mmbackbones.loading import CheckpointMismatchError, load_fitting
from mmbackbones.registry import MODELS

CONFIG = osp.join(REPO, 'configs', 'rexnet_fasterrcnn_fpn.py')
TEST = osp.join(REPO, 'tools', 'test.py')
QUICK = [
    '--cfg-options',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'test_dataloader.dataset.indices=2',
]


# ------------------------------------------------------------------- tools/test.py
_DETECTORS: dict[str, str] = {}


@pytest.fixture
def detector_ckpt(tmp_path_factory, builtin_root):
    """``detector_ckpt(arch)``: a Faster R-CNN + FPN checkpoint (built-in data heads) with
    ReXNet of ``arch``: x1.0 is what the config builds, x2.0 the issue's case (weights of
    another width). Built once per session."""

    def make(arch: str) -> str:
        if arch in _DETECTORS:
            return _DETECTORS[arch]
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        from mmbackbones.datasets.builtin import apply_builtin_data

        init_default_scope('mmdet')
        from mmdet.registry import MODELS as MMDET_MODELS

        cfg = Config.fromfile(CONFIG)
        apply_builtin_data(cfg, builtin_root)
        cfg.model.backbone.arch = arch
        cfg.model.backbone.pop('init_cfg')
        cfg.model.neck.in_channels = MODELS.build(dict(cfg.model.backbone)).out_channels
        path = str(tmp_path_factory.mktemp('ckpts') / f'rexnet{arch}_frcnn.pth')
        torch.save({'meta': {}, 'state_dict': MMDET_MODELS.build(cfg.model).state_dict()}, path)
        _DETECTORS[arch] = path
        return path

    return make


def _test_tool(ckpt: str, tmp_path, builtin_root, *flags: str):
    return run_tool(
        [TEST, CONFIG, ckpt, '--builtin-data', '--work-dir', str(tmp_path / 't'), *flags, *QUICK],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root},
        timeout=600,
    )


def test_tools_test_refuses_a_checkpoint_of_another_width(
    tmp_path, builtin_root, detector_ckpt
) -> None:
    """The issue's case: ReXNet x2.0 detector weights evaluated with the x1.0 config."""
    ckpt = detector_ckpt('2.0')
    res = _test_tool(ckpt, tmp_path, builtin_root)
    err = res.stderr
    assert res.returncode == 2, err[-3000:]
    assert 'Traceback' not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: checkpoint '{ckpt}' does not fit the model")
    assert "backbone mmbackbones.ReXNet(arch='1.0')" in line  # what the model is
    # the first mismatches, by name and shape, and how many there are
    assert 'backbone.layers.stem.conv.weight file (64, 3, 3, 3) vs model (32, 3, 3, 3)' in line
    n = sum(
        1
        for k, v in torch.load(ckpt, weights_only=True)['state_dict'].items()
        if k.startswith('backbone.') and not k.endswith('num_batches_tracked')
    )
    assert f'{n + 4} shape mismatches' in line  # every backbone tensor + 4 FPN laterals
    assert "mmbackbones.ReXNet(arch='2.0')" in line  # which model the file probably is
    assert '--allow-partial' in line
    assert 'bbox_mAP' not in res.stdout  # nothing was evaluated


# the lenient mode and a fitting checkpoint through the Runner: the fast tests below; these
# two run the whole tool, evaluation included
@pytest.mark.slow
def test_tools_test_allow_partial_evaluates_and_says_so(
    tmp_path, builtin_root, detector_ckpt
) -> None:
    res = _test_tool(detector_ckpt('2.0'), tmp_path, builtin_root, '--allow-partial')
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'allow_partial_checkpoint=True (--allow-partial)' in out
    assert 'allow_partial_checkpoint=True: loading only what fits' in out
    assert 'shape mismatches' in out
    assert 'coco/bbox_mAP' in out


@pytest.mark.slow
def test_tools_test_loads_a_matching_checkpoint(tmp_path, builtin_root, detector_ckpt) -> None:
    res = _test_tool(detector_ckpt('1.0'), tmp_path, builtin_root)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'does not fit' not in out
    assert 'coco/bbox_mAP' in out


# ------------------------------------------------- load_from and --resume (a real Runner)
class Toy(BaseModel):
    """A two-layer model for mmengine's Runner (``mode='loss'`` trains it)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.backbone = nn.Linear(3, width)
        self.head = nn.Linear(width, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.head(self.backbone(torch.stack(inputs)))
        return {'loss': out.pow(2).mean()} if mode == 'loss' else out


class ToyData(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=torch.full((3,), float(i)))


_RUNS = itertools.count()


def _runner(work_dir, width: int, **kw):
    from mmengine.runner import Runner

    hooks = [dict(type='mmbackbones.StrictLoadHook', allow_partial=kw.pop('partial', False))]
    return Runner(
        model=Toy(width),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
        ),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        custom_hooks=hooks,
        default_scope='mmengine',
        experiment_name=f'toy-{next(_RUNS)}',  # unique: one logger/visualizer per runner
        cfg=dict(load_from=kw.get('load_from')),  # what Runner.from_cfg passes
        **kw,
    )


@pytest.fixture
def toy_ckpt(tmp_path) -> str:
    """A real mmengine training checkpoint of ``Toy(4)`` (2 iterations)."""
    runner = _runner(tmp_path / 'trained', 4)
    runner.train()
    return str(tmp_path / 'trained' / 'iter_2.pth')


def test_load_from_a_checkpoint_that_fits(tmp_path, toy_ckpt) -> None:
    runner = _runner(tmp_path / 'ok', 4, load_from=toy_ckpt)
    runner.load_or_resume()
    saved = torch.load(toy_ckpt, weights_only=True)['state_dict']
    assert torch.equal(runner.model.backbone.weight, saved['backbone.weight'])


def test_load_from_that_does_not_fit_is_an_error(tmp_path, toy_ckpt) -> None:
    runner = _runner(tmp_path / 'bad', 8, load_from=toy_ckpt)
    with pytest.raises(CheckpointMismatchError) as e:
        runner.load_or_resume()
    msg = str(e.value)
    assert f"checkpoint '{toy_ckpt}' does not fit the model: 1 of its 4 tensors fit" in msg
    assert '3 shape mismatches (first: backbone.weight file (4, 3) vs model (8, 3)' in msg
    assert '--allow-partial' in msg and '\n' not in msg


def test_resume_with_a_changed_config_is_an_error(tmp_path, toy_ckpt) -> None:
    runner = _runner(tmp_path / 'resumed', 8, load_from=toy_ckpt, resume=True)
    with pytest.raises(CheckpointMismatchError, match=r'3 shape mismatches'):
        runner.train()


def test_missing_and_unexpected_keys_are_named(tmp_path) -> None:
    path = str(tmp_path / 'renamed.pth')
    sd = Toy(4).state_dict()
    sd['neck.weight'] = sd.pop('head.weight')
    torch.save({'state_dict': sd, 'meta': {}}, path)
    with pytest.raises(CheckpointMismatchError) as e:
        _runner(tmp_path / 'r', 4, load_from=path).load_or_resume()
    assert "1 of the model's keys missing (first: head.weight)" in str(e.value)
    assert '1 keys the model does not have (first: neck.weight)' in str(e.value)


def test_allow_partial_hook_loads_what_fits_and_logs(tmp_path, toy_ckpt) -> None:
    runner = _runner(tmp_path / 'partial', 8, load_from=toy_ckpt, partial=True)
    runner.load_or_resume()
    saved = torch.load(toy_ckpt, weights_only=True)['state_dict']
    assert torch.equal(runner.model.head.bias, saved['head.bias'])  # what fits is loaded
    files = [h.baseFilename for h in runner.logger.handlers if hasattr(h, 'baseFilename')]
    log = open(files[0]).read()
    assert 'allow_partial_checkpoint=True: loading only what fits' in log
    assert '3 shape mismatches' in log


def test_load_fitting_follows_the_modules_key_renames() -> None:
    """A converted file (``b<i>.expand`` keys) into a backbone with the expansion split."""
    full = MODELS.build(dict(type='mmbackbones.MobileNetV3', arch='large', out_indices=(-1,)))
    split = MODELS.build(
        dict(
            type='mmbackbones.MobileNetV3',
            arch='large',
            out_indices=(-1,),
            feature_location='expansion',
        )
    )
    fit = load_fitting(split, full.state_dict())
    assert fit.ok and fit.loaded == fit.total


# ------------------------------------------------------------------- Pretrained init
def _bb(arch: str = '1.0', **kw) -> nn.Module:
    return MODELS.build(dict(type='mmbackbones.ReXNet', arch=arch, **kw))


@pytest.fixture
def bb_file(tmp_path) -> str:
    """A backbone file as tools/convert_weights.py writes one: every layer, head conv too."""
    path = str(tmp_path / 'rexnet_1.0.pth')
    torch.save({'state_dict': _bb(out_indices=(-1,)).state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture
def det_file(tmp_path) -> str:
    """A whole model's checkpoint: the backbone under ``backbone.``, plus a neck."""
    path = str(tmp_path / 'detector.pth')
    sd = {f'backbone.{k}': v for k, v in _bb().state_dict().items()}
    sd['neck.conv.weight'] = torch.zeros(8, 185, 1, 1)
    torch.save({'state_dict': sd, 'meta': {}}, path)
    return path


def _init(model: nn.Module) -> list[str]:
    """``init_weights()``; returns the [mmbackbones] lines it logged."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if '[mmbackbones]' in record.getMessage():
                lines.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Keep()
    logger.addHandler(handler)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(handler)
    return lines


def test_pretrained_backbone_file_loads_and_reports_skipped_layers(bb_file) -> None:
    model = _bb(out_indices=(1, 2, 3, 4), init_cfg=dict(type='Pretrained', checkpoint=bb_file))
    lines = _init(model)
    saved = torch.load(bb_file, weights_only=True)['state_dict']
    assert torch.equal(
        model.layers.b15.project.conv.weight, saved['layers.b15.project.conv.weight']
    )
    assert len(lines) == 1
    assert 'loaded 344/344 tensors; skipped 6 tensors of layers not built (head)' in lines[0]


def test_pretrained_missing_layers_keep_their_init_in_one_line(tmp_path) -> None:
    # a backbone saved without its head conv, loaded into one that builds the head tap
    path = str(tmp_path / 'no_head.pth')
    torch.save({'state_dict': _bb(out_indices=(4,)).state_dict()}, path)
    model = _bb(out_indices=(5,), init_cfg=dict(type='Pretrained', checkpoint=path))
    lines = _init(model)
    assert len(lines) == 1
    assert '5 not in the file keep their init (first: layers.head.conv.weight' in lines[0]


def test_pretrained_of_another_width_is_an_error(bb_file) -> None:
    model = _bb('1.3', init_cfg=dict(type='Pretrained', checkpoint=bb_file))
    with pytest.raises(CheckpointMismatchError) as e:
        model.init_weights()
    msg = str(e.value)
    assert msg.startswith(f"ReXNet(arch='1.3'): Pretrained checkpoint '{bb_file}' does not fit")
    assert 'layers.stem.conv.weight file (32, 3, 3, 3) vs backbone (42, 3, 3, 3)' in msg
    assert "those of mmbackbones.ReXNet(arch='1.0')" in msg


def test_pretrained_prefix_typo_is_an_error(det_file) -> None:
    model = _bb(init_cfg=dict(type='Pretrained', checkpoint=det_file, prefix='backbon.'))
    with pytest.raises(CheckpointMismatchError, match=r"prefix='backbon\.' matches none of its "
                       r"\d+ keys; they start with 'backbone\.', 'neck\.'"):  # fmt: skip
        model.init_weights()


def test_pretrained_whole_model_file_without_prefix_is_an_error(det_file) -> None:
    model = _bb(init_cfg=dict(type='Pretrained', checkpoint=det_file))
    with pytest.raises(CheckpointMismatchError) as e:
        model.init_weights()
    assert '0 of its 344 tensors fit' in str(e.value)
    assert "add prefix='backbone.' to the init_cfg" in str(e.value)


def test_pretrained_with_prefix_loads(det_file) -> None:
    model = _bb(init_cfg=dict(type='Pretrained', checkpoint=det_file, prefix='backbone.'))
    assert 'loaded 344/344 tensors' in _init(model)[0]


def test_pretrained_foreign_file_names_the_published_model(tmp_path) -> None:
    timm = pytest.importorskip('timm')
    path = str(tmp_path / 'rexnet_100.pth')
    torch.save(timm.create_model('rexnet_100', pretrained=False).state_dict(), path)
    model = _bb(init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError) as e:
        model.init_weights()
    assert "it looks like timm 'rexnet_100': convert with --source timm" in str(e.value)


def test_pretrained_allow_partial_loads_what_fits_and_logs(bb_file) -> None:
    model = _bb('1.3', init_cfg=dict(type='Pretrained', checkpoint=bb_file, allow_partial=True))
    lines = _init(model)
    assert lines[0].startswith('[mmbackbones] allow_partial=True: loading only what fits')
    assert 'loaded 0/344 tensors' in lines[-1]
