"""CheXpert from a small synthetic `CheXpert-v1.0-small/` tree in the dataset's own layout."""

import csv

import numpy as np
import pytest
from PIL import Image

from dpal_jax import data
from dpal_jax.data import chexpert
from dpal_jax.errors import DataError

HEADER = ['Path', 'Sex', 'Age', 'Frontal/Lateral', 'AP/PA', 'No Finding',
          'Enlarged Cardiomediastinum', 'Cardiomegaly', 'Lung Opacity', 'Lung Lesion', 'Edema',
          'Consolidation', 'Pneumonia', 'Atelectasis', 'Pneumothorax', 'Pleural Effusion',
          'Pleural Other', 'Fracture', 'Support Devices']


def write_split(root, split, images, labels):
  """images: list of PIL images; labels: list of {column: value} (others blank)."""
  rows = []
  for i, (image, label) in enumerate(zip(images, labels)):
    rel = f'{split}/patient{i:05d}/study1/view1_frontal.' + ('png' if i % 2 else 'jpg')
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    image.save(root / rel)
    rows.append({'Path': f'CheXpert-v1.0-small/{rel}', 'Sex': 'Female', 'Age': '60',
                 'Frontal/Lateral': 'Frontal', 'AP/PA': 'AP', **label})
  with open(root / f'{split}.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, HEADER, restval='')
    writer.writeheader()
    writer.writerows(rows)


def centre_white(width, height):
  """Grey image: white in the middle third of the long side, black in its outer 30 % each side."""
  pixels = np.full((height, width), 255, np.uint8)
  if width > height:
    pixels[:, :int(0.3 * width)] = pixels[:, int(0.7 * width):] = 0
  else:
    pixels[:int(0.3 * height)] = pixels[int(0.7 * height):] = 0
  return Image.fromarray(pixels, 'L')


@pytest.fixture
def tree(tmp_path):
  root = tmp_path / 'CheXpert-v1.0-small'
  train_images = [centre_white(600, 200), centre_white(200, 600), centre_white(1200, 400),
                  Image.fromarray(np.full((390, 400), 51, np.uint8), 'L')]
  train_labels = [{'Atelectasis': '-1.0', 'Cardiomegaly': '-1.0', 'Edema': '1.0'},
                  {'No Finding': '1.0', 'Pleural Effusion': '-1.0', 'Fracture': '0.0'},
                  {'Support Devices': '1.0', 'Lung Opacity': '-1.0'}, {}]
  write_split(root, 'train', train_images, train_labels)
  write_split(root, 'valid', [centre_white(320, 320), centre_white(500, 250)],
              [{'Atelectasis': '1.0'}, {'Cardiomegaly': '1.0', 'Edema': '0.0'}])
  return tmp_path


def test_images_are_centre_cropped_rgb_in_unit_range(tree):
  ds = data.load('chexpert', data_dir=str(tree))
  assert ds.task == 'multilabel' and ds.num_classes == 14
  assert ds.x_train.shape == (4, 192, 192, 3) and ds.x_train.dtype == np.float32
  assert ds.x_test.shape == (2, 192, 192, 3)
  assert ds.x_train.min() >= -1.0 and ds.x_train.max() <= 1.0
  np.testing.assert_array_equal(ds.x_train[..., 0], ds.x_train[..., 2])  # grey -> RGB
  for i in range(3):  # the crop keeps the white centre of every long side
    assert ds.x_train[i].min() > 0.9, i
  np.testing.assert_allclose(ds.x_train[3], 51 / 127.5 - 1, atol=1e-5)


def test_labels_follow_the_original_order_and_uncertainty_policy(tree):
  ds = chexpert.load(data_dir=str(tree / 'CheXpert-v1.0-small'))
  names = list(chexpert.LABELS)
  y = ds.y_train
  assert y.shape == (4, 14) and y.dtype == np.float32
  assert y[0, names.index('Atelectasis')] == pytest.approx(0.8)   # U-Ones (smoothed)
  assert y[0, names.index('Cardiomegaly')] == pytest.approx(0.2)  # U-Zeros (smoothed)
  assert y[0, names.index('Edema')] == 1.0
  assert y[1, names.index('Pleural Effusion')] == pytest.approx(0.8)
  assert y[2, names.index('Lung Opacity')] == pytest.approx(0.2)
  assert y[1, names.index('No Finding')] == 1.0 and y[2, 13] == 1.0
  assert y[3].sum() == 0.0  # blanks are negatives
  assert names[:5] == ['Atelectasis', 'Cardiomegaly', 'Consolidation', 'Edema',
                       'Pleural Effusion']
  np.testing.assert_array_equal(ds.y_test[:, :2], [[1, 0], [0, 1]])


def test_decoded_splits_are_cached_and_a_test_csv_takes_precedence(tree):
  first = data.load('chexpert', data_dir=str(tree))
  for image in (tree / 'CheXpert-v1.0-small' / 'train').rglob('*.*'):
    image.unlink()
  again = data.load('chexpert', data_dir=str(tree))  # served from .dpal_cache, no images needed
  np.testing.assert_array_equal(first.x_train, again.x_train)
  write_split(tree / 'CheXpert-v1.0-small', 'test', [centre_white(300, 300)] * 3,
              [{'Edema': '1.0'}, {}, {}])
  assert len(data.load('chexpert', data_dir=str(tree)).x_test) == 3


def test_missing_folder_names_the_field(tmp_path):
  with pytest.raises(DataError, match='dataset.data_dir'):
    chexpert.load(data_dir=str(tmp_path))
  with pytest.raises(DataError, match='dataset.data_dir'):
    chexpert.load()
