"""Default experiment: DP active learning on the embedded mnist5k pool (no download needed).

Fixed wavelet scattering features (data-independent, docs/selection.md) and a linear classifier trained
with DP-SGD; 1,000 initial labels and one query of 500 by the private `uncertain` score through the
Laplace query (1,500 labels); `cohort_exact` step amplification, ε = 8 for every labeled person including
the queries, δ = 1e-5. Other configs start from this one (or from configs/mlp_pixels.py, the MLP on
pixels this default was before) and override fields.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.loop = 'dpal'                # the algorithm: 'dpal' | 'random_baseline' (dpal_jax.loops)
  config.seed = ml_collections.config_dict.placeholder(int)  # None: OS entropy for all noise

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = 'mnist5k'
  config.dataset.data_dir = ml_collections.config_dict.placeholder(str)
  config.dataset.test_size = 1000
  config.dataset.image_size = ml_collections.config_dict.placeholder(int)  # MedMNIST 28/64/128/224
  config.dataset.noise = 'clean'      # noise added to the pool: 'clean' | 'blank' | 'diverse' | 'class'
  config.dataset.noise_mult = 1.0     # round(noise_mult × pool size) noisy examples; 'clean' ignores it
  # A fixed, data-independent transform of every example (data.FEATURES): 'pixels' (none) | 'scattering'
  # (wavelet scattering, J = 2: 28×28 → 7×7×81, normalised per image; docs/selection.md).
  config.dataset.features = 'scattering'
  # Simulated privacy units (data.units, docs/budgets.md): S public sites 'site_0'…, for per-group budgets;
  # persons of 1…R records (the person becomes the privacy unit; al sizes then count persons). 0: none.
  config.dataset.sites = 0
  config.dataset.max_records_per_person = 0

  config.model = ml_collections.ConfigDict()
  config.model.name = 'logreg'
  config.model.checkpoint = ml_collections.config_dict.placeholder(str)
  config.model.dropout = 0.0          # training dropout; BALD uses al.mc_dropout at query time

  config.train = ml_collections.ConfigDict()
  config.train.optimizer = 'adam'
  config.train.learning_rate = 2e-3
  config.train.epochs = ml_collections.FieldReference(10, field_type=object)  # int, or one per phase
  config.train.batch_size = 256       # expected (logical) batch size B
  config.train.physical_batch_size = 256
  config.train.clip_norm = 1.0
  config.train.grad_method = 'auto'   # 'auto' | 'vmap' | 'ghost' (Dense-only) | 'conv' | 'conv_two_pass' (Conv/Dense/GN)
  config.train.eval_batch_size = 1024
  config.train.fresh_init = False     # True: a fresh network (and optimizer state) every phase, as LHD
  # 'poisson': the accountant's Poisson batches | 'shuffled': a permutation per epoch (non-private only)
  config.train.batching = 'poisson'
  # Confident fine-tuning (docs/lhd.md): after each phase, train on the labeled set and the pool points
  # predicted with probability > 0.8, all with the model's own labels and strong augmentation.
  config.train.finetune_confident = False   # under privacy.enabled: needs privacy.epsilon_finetune
  config.train.finetune_epochs = 10
  config.train.finetune_lr_multiplier = 100.0   # × train.learning_rate, the paper's 100 (tune it under DP)

  config.privacy = ml_collections.ConfigDict()
  config.privacy.enabled = True
  config.privacy.epsilon = 8.0
  config.privacy.delta = 1e-5
  config.privacy.epsilon_al = 1.0     # total query budget, spread over the queries
  # 'fixed': spend epsilon_al as given; 'auto': the planner picks the query budget up to epsilon_al that
  # maximises a public accuracy proxy (privacy/split.py, docs/selection.md).
  config.privacy.epsilon_al_split = 'fixed'
  config.privacy.mode = 'cohort_exact'
  config.privacy.accountant = 'rdp'
  config.privacy.query_mechanism = 'laplace'
  # A pool's persistent ledger (docs/budgets.md): a folder shared by every campaign on this pool; each run
  # plans from what earlier ones spent and stops before it would overspend. None (default): off.
  config.privacy.ledger_path = ml_collections.config_dict.placeholder(str)
  config.privacy.epsilon_finetune = ml_collections.config_dict.placeholder(float)   # DP fine-tuning's ε
  # Per-group budgets: {group name: ε target ≤ privacy.epsilon} for the groups the dataset names
  # (Dataset.groups, e.g. dataset.sites); unnamed groups get privacy.epsilon; {} (default): none.
  config.privacy.group_epsilon = ml_collections.ConfigDict()

  config.al = ml_collections.ConfigDict()
  config.al.strategy = 'uncertain'
  config.al.initial_size = 1000
  config.al.query_sizes = (500,)
  config.al.labeling_budget = 1500
  config.al.query_batch_size = 1024
  config.al.mc_samples = 20           # BALD
  config.al.mc_dropout = 0.3          # BALD
  # Diagnostic, off by default: log each query's selection fidelity, computed from unnoised scores
  # (not DP; log line only, never metrics.jsonl, summary.json or the ledger).
  config.al.log_fidelity = False
  # When a private query would exceed the budget: 'none' stops the run there; 'random' selects uniformly at
  # random instead (independent of the data: it costs the candidates nothing).
  config.al.fallback = 'none'
  # LHD (docs/lhd.md): the epoch of the (online, EMA) snapshot; None: the paper's accuracy rule without
  # DP, the last epoch under DP. lhd_score: the bound B of ‖g(x)‖, the clamp of its private selection.
  config.al.lhd_snapshot_epoch = ml_collections.config_dict.placeholder(int)
  config.al.lhd_score_bound = 1.0

  # Empirical privacy audit (dpal_jax.audit): with `enabled`, after the run a separate audit run in
  # WORKDIR/audit (its own ledger) plants canaries and writes audit.json; summary.json links it.
  config.audit = ml_collections.ConfigDict()
  config.audit.enabled = False
  config.audit.canaries = 1000          # m training canaries, each included by a fair coin
  config.audit.canary_kind = 'gradient' # 'gradient' (Dirac, white-box) | 'input' (input space)
  config.audit.guesses = 100            # "included" guessed for the 100 highest scores
  config.audit.query_canaries = 1000    # planted candidates of one query round (0: no query audit)
  config.audit.significance = 0.05      # the bound holds with probability ≥ 95%
  return config
