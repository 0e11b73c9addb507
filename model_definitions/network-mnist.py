"""Conditional DCGAN for MNIST-like digits (28 x 28 x 1, class labels).

Source: the NVIDIA DIGITS GAN example ("Generative Adversarial Networks with DIGITS",
digits/examples/gan/network-mnist.py), itself after carpedm20/DCGAN-tensorflow's MNIST
model (Radford et al. 2015, DCGAN; Mirza & Osindero 2014, conditional GAN): the one-hot
class label is concatenated to the input of every layer of G and D.

Losses: D = CE(D(x, y), 0.9) + CE(D(G(z, y), y), 0) (one-sided label smoothing, class
attribute `real_label`, set it to 1.0 to switch smoothing off); G = CE(D(G(z, y), y), 1)
(the non-saturating loss). Two loss entries, D then G, each with Adam (2e-4, beta1 0.5).
Summaries: each loss, D's mean output on real and fake batches, and the chi-square
distance between the real and fake pixel-value histograms (0 = same distribution).

Batch norm uses batch statistics while training and moving averages in the validation and
inference towers; the moving averages are updated by control dependencies of the losses,
so any DIGITS-style trainer runs them.

Options (class attributes, all off by default, so the recipe's results are unchanged; a
bad value stops with FILE:LINE before any graph is built):
    regularizer     'none' | 'r1'                                     (default 'none')
    penalty_weight  finite >= 0: gamma of R1, D += gamma/2 E||grad D(x)||^2 on real x (10)
    penalty_every   lazy regularization: R1 on every k-th global step, times k (16)
    diffaugment     '' or a subset of 'color,translation,cutout': DiffAugment, the same
                    random differentiable transforms on every batch D sees, real and fake
    ema_decay       None, or a decay in (0, 1): the runtime keeps an EMA of G's weights,
                    used by the sample grids, infer, evaluate and export (--ema-decay wins)
R1's extra pass through D adds no batch-norm updates. For a small dataset try
diffaugment = 'translation,cutout'; against an overconfident D, regularizer = 'r1'.
Inside DIGITS the global step counts loss entries, so a lazy interval does too.

Recommended recipe (train_options.MNIST_RECIPE; 4,500 digits: about 70 steps per epoch;
recognisable digits of the right class after ~5 epochs; with an EMA of G, 12 epochs judge
as well as 30 without: conditional accuracy ratio 0.988, MNIST score ratio 0.989):
    digits-gan train --dataset DATASET --network network-mnist \
        --epochs 12 --batch-size 64 --solver adam --lr 2e-4 --ema-decay 0.995 --out JOBDIR

Inference input: N x 1 x 1 x (z_dim + nclasses) float32 vectors, z ~ U(-1, 1) then the
one-hot (or soft) class label; output: N x 28 x 28 x 1 uint8 images in 0..255.
"""


# --- shared: layers ---
# Shared helper blocks are identical in every model file that has them (a model file
# must paste into DIGITS on its own); tests/test_digits_models.py compares the copies.
def _weight(name, shape, stddev=0.02):
    return tf.get_variable(name, shape, initializer=tf.random_normal_initializer(stddev=stddev))


def _bias(name, size):
    return tf.get_variable(name, [size], initializer=tf.zeros_initializer())


def linear(x, units, name):
    """x: N x K float32 -> N x units."""
    with tf.variable_scope(name):
        return tf.matmul(x, _weight('weights', [int(x.shape[-1]), units])) + _bias('biases', units)


def conv2d(x, filters, name, kernel=5, stride=2):
    """x: N x H x W x C -> N x H/stride x W/stride x filters ('SAME' padding)."""
    with tf.variable_scope(name):
        w = _weight('weights', [kernel, kernel, int(x.shape[-1]), filters])
        y = tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding='SAME')
        return tf.nn.bias_add(y, _bias('biases', filters))


def deconv2d(x, height, width, filters, name, kernel=5, stride=2):
    """x: N x h x w x C -> N x height x width x filters (transposed convolution)."""
    with tf.variable_scope(name):
        w = _weight('weights', [kernel, kernel, filters, int(x.shape[-1])])
        shape = tf.stack([tf.shape(x)[0], height, width, filters])
        y = tf.nn.conv2d_transpose(x, w, shape, strides=[1, stride, stride, 1], padding='SAME')
        y.set_shape([None, height, width, filters])
        return tf.nn.bias_add(y, _bias('biases', filters))


def lrelu(x, leak=0.2):
    if hasattr(tf.nn, 'leaky_relu'):  # one fused op (TF >= 1.4); older TensorFlow (DIGITS) has only the max form
        return tf.nn.leaky_relu(x, alpha=leak)
    return tf.maximum(x, leak * x)
# --- end shared ---


# --- shared: batch-norm ---
def batch_norm(x, name, is_training, updates, decay=0.9, epsilon=1e-5):
    """Batch normalization of N x K or N x H x W x K; batch statistics while training
    (the moving-average assign ops are appended to `updates`), moving averages otherwise."""
    with tf.variable_scope(name):
        size = int(x.shape[-1])
        gamma = tf.get_variable('gamma', [size], initializer=tf.ones_initializer())
        beta = tf.get_variable('beta', [size], initializer=tf.zeros_initializer())
        moving_mean = tf.get_variable('moving_mean', [size], initializer=tf.zeros_initializer(),
                                      trainable=False)
        moving_var = tf.get_variable('moving_variance', [size], initializer=tf.ones_initializer(),
                                     trainable=False)
    x4 = x if x.shape.ndims == 4 else tf.reshape(x, [-1, 1, 1, size])
    y, mean, var = tf.nn.fused_batch_norm(
        x4, gamma, beta, mean=moving_mean, variance=moving_var, epsilon=epsilon,
        is_training=is_training, exponential_avg_factor=1.0 - decay if is_training else 1.0)
    if is_training:
        updates += [tf.assign(moving_mean, mean), tf.assign(moving_var, var)]
    return y if x.shape.ndims == 4 else tf.reshape(y, [-1, size])
# --- end shared ---


# --- shared: conditioning ---
def concat_label(x, y):
    """Append the N x K label y to every position of x (N x K' or N x H x W x K')."""
    if x.shape.ndims == 2:
        return tf.concat([x, y], 1)
    height, width = int(x.shape[1]), int(x.shape[2])
    return tf.concat([x, tf.tile(y[:, None, None, :], [1, height, width, 1])], 3)


def class_one_hot(model):
    """The tower's class labels (N ints) as an N x classes one-hot; ValueError when the
    dataset has none (attribute vectors, or no labels at all)."""
    if model.y is None or not model.y.dtype.is_integer:
        raise ValueError('this network is conditioned on class labels; the dataset has %s'
                         % ('no labels' if model.y is None else 'attribute labels, not classes'))
    return tf.one_hot(model.y, class_count(model))
# --- end shared ---


# --- shared: digits-inputs ---
# DIGITS builds towers differently from digits-gan (docs/model_files.md): x has no static
# shape, input_shape is the shape of the data being read (1 x 1 x D vectors when a
# generator infers), nclasses is 0 for datasets without a labels file, and `inference`
# is also built on the train and validation towers. These helpers work under both.
def image_shape(model, multiple=1):
    """[H, W, C] of the model's images: input_shape, or the class attribute image_shape
    when input_shape is that of inference vectors (DIGITS). multiple: what H and W must
    be multiples of (a generator that doubles the size n times: 2 ** n); ValueError
    naming the sizes otherwise."""
    shape = [int(n) for n in model.input_shape]
    if model.is_inference and 1 in shape[:2] and getattr(model, 'image_shape', None):
        shape = [int(n) for n in model.image_shape]
    if shape[0] % multiple or shape[1] % multiple:
        raise ValueError('this network makes images whose height and width are multiples of %d; '
                         'the dataset has %d x %d images' % (multiple, shape[0], shape[1]))
    return shape


def images_in(model):
    """The tower's x as N x H x W x C float32 images (a static shape for the layers)."""
    return tf.reshape(tf.cast(model.x, tf.float32), [-1] + image_shape(model))


def class_count(model):
    """Width of the class one-hot: nclasses, or the class attribute `classes` when the
    runtime passes 0."""
    return int(model.nclasses or model.classes)
# --- end shared ---


# --- shared: option-checks ---
# Options of the zoo and DCGAN files (class attributes, documented in each file's
# docstring). They are checked when a tower is created, so a bad value stops before any
# graph is built.
LOSS_TYPES = ('non-saturating', 'hinge', 'wasserstein')
REGULARIZERS = ('none', 'gp', 'r1')
AUGMENTATIONS = ('color', 'translation', 'cutout')


def non_negative_option(model, name):
    value = getattr(model, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError('UserModel.%s must be a finite number >= 0, got %r' % (name, value))
    return value


def positive_int_option(model, name):
    value = getattr(model, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('UserModel.%s must be an int >= 1 (an entry that never runs is an error), got %r'
                         % (name, value))
    return value


def augment_policy(model):
    """The DiffAugment transforms named by model.diffaugment, a comma-separated string
    ('' = none), e.g. 'color,translation,cutout'."""
    policy = model.diffaugment
    if not isinstance(policy, str):
        raise ValueError('UserModel.diffaugment must be a string such as %r or \'\', got %r'
                         % (','.join(AUGMENTATIONS), policy))
    names = [name.strip() for name in policy.split(',') if name.strip()]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError('UserModel.diffaugment: unknown transform(s) %s (expected some of %s)'
                         % (', '.join(unknown), ', '.join(AUGMENTATIONS)))
    return names
# --- end shared ---


# --- shared: penalties ---
def gradient_penalty(critic, real, fake):
    """WGAN-GP (Gulrajani et al. 2017): mean (||grad critic(x)||_2 - 1)^2 at points x drawn
    uniformly between paired real and fake images (double back-prop: differentiable)."""
    alpha = tf.random_uniform([tf.shape(real)[0], 1, 1, 1])
    mixed = real + alpha * (fake - real)
    grad = tf.gradients(tf.reduce_sum(critic(mixed)), [mixed])[0]
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def r1_penalty(critic, real):
    """R1 (Mescheder et al. 2018): mean ||grad critic(x)||_2^2 at the real images x."""
    grad = tf.gradients(tf.reduce_sum(critic(real)), [real])[0]
    return tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))


def discriminator_penalty(model, critic, real, fake):
    """The regularizer term of D's loss (float32 scalar): penalty_weight x the gradient
    penalty ('gp'), penalty_weight / 2 x R1 ('r1'), or 0 ('none'). Lazy when penalty_every
    = k > 1 (StyleGAN2): only on global steps divisible by k, then times k, so it weighs
    the same on average and costs 1/k."""
    if model.regularizer == 'none' or model.penalty_weight == 0:
        return tf.constant(0.0)

    def term():
        if model.regularizer == 'gp':
            return model.penalty_weight * gradient_penalty(critic, real, fake)
        return 0.5 * model.penalty_weight * r1_penalty(critic, real)

    step = tf.train.get_global_step()
    if model.penalty_every == 1 or step is None:
        return term()
    due = tf.equal(step % model.penalty_every, 0)
    return tf.cond(due, lambda: float(model.penalty_every) * term(), lambda: tf.constant(0.0))
# --- end shared ---


# --- shared: diffaugment ---
def diff_augment(images, policy, value_range):
    """DiffAugment (Zhao et al. 2020): random per-sample transforms, differentiable in the
    images, applied alike to every batch D sees (real and fake). images: N x H x W x C
    (static H, W) spanning value_range (1 for 0..1, 2 for -1..1); policy: names from
    augment_policy. 'color': brightness, saturation, contrast; 'translation': shift by up
    to 1/8 of the size, zero fill; 'cutout': a zeroed square of half the size."""
    count = tf.shape(images)[0]
    x = images
    if 'color' in policy:
        x = x + (tf.random_uniform([count, 1, 1, 1]) - 0.5) * (value_range / 2.0)
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * (tf.random_uniform([count, 1, 1, 1]) * 2.0) + mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * (tf.random_uniform([count, 1, 1, 1]) + 0.5) + mean
    if 'translation' in policy:
        x = translate(x)
    if 'cutout' in policy:
        x = cutout(x)
    return x


def translate(x, ratio=0.125):
    """Shift each image of x (N x H x W x C) by its own random offset, zero fill."""
    count, height, width = tf.shape(x)[0], int(x.shape[1]), int(x.shape[2])
    shift_h, shift_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = tf.random_uniform([count, 1], -shift_h, shift_h + 1, dtype=tf.int32)
    dx = tf.random_uniform([count, 1], -shift_w, shift_w + 1, dtype=tf.int32)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])                  # N x (H + 2) x (W + 2) x C
    rows = tf.clip_by_value(tf.range(height)[None, :] + dy + 1, 0, height + 1)  # N x H; off-image -> zero pad
    cols = tf.clip_by_value(tf.range(width)[None, :] + dx + 1, 0, width + 1)    # N x W
    x = tf.gather(padded, rows, axis=1, batch_dims=1)                      # N x H x (W + 2) x C
    return tf.gather(x, cols, axis=2, batch_dims=1)                        # N x H x W x C


def cutout(x, ratio=0.5):
    """Zero a random (ratio H) x (ratio W) rectangle of each image (it may cross the edge)."""
    count, height, width = tf.shape(x)[0], int(x.shape[1]), int(x.shape[2])
    size_h, size_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = tf.random_uniform([count, 1, 1], 0, height + 1 - size_h % 2, dtype=tf.int32) - size_h // 2
    left = tf.random_uniform([count, 1, 1], 0, width + 1 - size_w % 2, dtype=tf.int32) - size_w // 2
    rows, cols = tf.range(height)[None, :, None], tf.range(width)[None, None, :]
    inside = tf.logical_and(tf.logical_and(rows >= top, rows < top + size_h),
                            tf.logical_and(cols >= left, cols < left + size_w))   # N x H x W
    return x * (1.0 - tf.cast(inside, x.dtype))[:, :, :, None]
# --- end shared ---


# --- shared: dcgan-options ---
DCGAN_REGULARIZERS = ('none', 'r1')


def check_dcgan_options(model):
    """Raise ValueError naming the first bad option of a DCGAN file (regularizer,
    penalty_weight, penalty_every, diffaugment)."""
    if model.regularizer not in DCGAN_REGULARIZERS:
        raise ValueError('UserModel.regularizer must be one of %s, got %r'
                         % (', '.join(DCGAN_REGULARIZERS), model.regularizer))
    non_negative_option(model, 'penalty_weight')
    positive_int_option(model, 'penalty_every')
    augment_policy(model)


def dcgan_discriminate(model, discriminator, real, fake, value_range):
    """(D logits on real, on fake, R1 term of D's loss or None): discriminator(images,
    updates) on the batches as DiffAugment (model.diffaugment) transforms them, and the
    penalty of model.regularizer, whose extra pass through D adds no batch-norm updates.
    With both options off the graph is exactly the DIGITS example's."""
    policy = augment_policy(model)

    def discriminate(images, updates=None):
        return discriminator(diff_augment(images, policy, value_range) if policy else images, updates)

    penalty = None
    d_real, d_fake = discriminate(real), discriminate(fake)
    if model.regularizer != 'none':
        penalty = discriminator_penalty(model, lambda images: discriminate(images, []), real, fake)
    return d_real, d_fake, penalty
# --- end shared ---


def pixel_histogram_chi_square(real, fake, nbins=32):
    """Chi-square distance sum((r - f)^2 / (r + f)) between the normalized pixel-value
    histograms of two image batches (any shapes, values in 0..1). Bins empty in both
    histograms contribute 0; normalizing makes it independent of the batch sizes.
    Returns a float32 scalar in [0, 2]."""
    def histogram(images):
        counts = tf.histogram_fixed_width(tf.reshape(images, [-1]), [0.0, 1.0], nbins=nbins)
        counts = tf.cast(counts, tf.float32)
        return counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    r, f = histogram(real), histogram(fake)
    total = r + f
    safe_total = tf.where(total > 0, total, tf.ones_like(total))
    return tf.reduce_sum(tf.where(total > 0, tf.square(r - f) / safe_total, tf.zeros_like(total)))


class UserModel(Tower):
    z_dim = 100
    z_distribution = 'uniform'  # G samples tf.random_uniform(-1, 1); inference draws z alike
    conditional = True
    classes = 10                # one-hot width where the runtime passes nclasses 0 (DIGITS)
    image_shape = (28, 28, 1)   # G's output size where DIGITS infers with input_shape 1 x 1 x D
    real_label = 0.9  # one-sided label smoothing of D's real targets; 1.0 switches it off
    gf_dim = 64       # width of G's 14 x 14 deconvolution (its 7 x 7 map has twice that)
    df_dim = 64       # width of D's second convolution, plus nclasses as in carpedm20's
    fc_dim = 1024     # width of the fully connected hidden layers of G and D
    regularizer = 'none'  # 'r1': R1 penalty on D (see the docstring's options)
    penalty_weight = 10.0
    penalty_every = 16
    diffaugment = ''
    ema_decay = None  # e.g. 0.999: the runtime keeps an EMA of G's weights

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        check_dcgan_options(self)
        self.bn_updates = []

    def generator(self, z, y, updates=None):
        """z: N x z_dim, y: N x classes (one-hot) -> N x H x W x C images in 0..1.
        updates: where batch norm puts its moving-average updates (default bn_updates)."""
        height, width, channels = image_shape(self, 4)
        h4, w4 = height // 4, width // 4
        train = self.is_training and not self.is_inference
        updates = self.bn_updates if updates is None else updates
        with tf.variable_scope('generator', reuse=tf.AUTO_REUSE) as scope:
            h = concat_label(z, y)                                              # N x (z + y)
            h = tf.nn.relu(batch_norm(linear(h, self.fc_dim, 'fc1'), 'bn1', train, updates))
            h = concat_label(h, y)                                              # N x (1024 + y)
            h = linear(h, h4 * w4 * self.gf_dim * 2, 'fc2')
            h = tf.nn.relu(batch_norm(h, 'bn2', train, updates))
            h = tf.reshape(h, [-1, h4, w4, self.gf_dim * 2])                    # N x 7 x 7 x 128
            h = concat_label(h, y)
            h = deconv2d(h, h4 * 2, w4 * 2, self.gf_dim, 'deconv3')             # N x 14 x 14 x 64
            h = tf.nn.relu(batch_norm(h, 'bn3', train, updates))
            h = concat_label(h, y)
            h = deconv2d(h, height, width, channels, 'deconv4')                 # N x 28 x 28 x 1
        self.g_scope = scope.name
        return tf.nn.sigmoid(h)

    def discriminator(self, images, y, updates=None):
        """images: N x H x W x C in 0..1, y: N x classes -> N x 1 logits. updates: where
        batch norm puts its moving-average updates (default bn_updates)."""
        updates = self.bn_updates if updates is None else updates
        with tf.variable_scope('discriminator', reuse=tf.AUTO_REUSE) as scope:
            # carpedm20's small D: its first convolution is only (C + nclasses) wide.
            width = int(images.shape[-1]) + class_count(self)
            h = concat_label(images, y)                                         # N x 28 x 28 x (1 + y)
            h = lrelu(conv2d(h, width, 'conv1'))                                # N x 14 x 14 x (1 + y)
            h = concat_label(h, y)
            h = conv2d(h, self.df_dim + class_count(self), 'conv2')                 # N x 7 x 7 x (64 + y)
            h = lrelu(batch_norm(h, 'bn2', self.is_training, updates))
            h = concat_label(tf.reshape(h, [tf.shape(h)[0], int(h.shape[1] * h.shape[2] * h.shape[3])]), y)
            h = lrelu(batch_norm(linear(h, self.fc_dim, 'fc3'), 'bn3', self.is_training, updates))
            h = concat_label(h, y)                                              # N x (1024 + y)
            logits = linear(h, 1, 'fc4')                                        # N x 1
        self.d_scope = scope.name
        return logits

    @model_property
    def inference(self):
        """Inference: N x 1 x 1 x (z_dim + classes) -> N x H x W x C uint8 images. On the
        train and val towers (DIGITS builds inference there too): G of random z and the
        batch's labels, with no batch-norm updates."""
        if self.is_inference:
            vectors = tf.reshape(self.x, [-1, self.z_dim + class_count(self)])
            images = self.generator(vectors[:, :self.z_dim], vectors[:, self.z_dim:])
        else:
            z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
            images = self.generator(z, class_one_hot(self), updates=[])
        return tf.cast(tf.round(images * 255.0), tf.uint8)

    @model_property
    def loss(self):
        real = images_in(self) / 255.0                                          # N x 28 x 28 x 1
        batch = tf.shape(real)[0]
        y = class_one_hot(self)
        z = tf.random_uniform([batch, self.z_dim], -1.0, 1.0)
        fake = self.generator(z, y)
        d_real, d_fake, penalty = dcgan_discriminate(
            self, lambda images, updates: self.discriminator(images, y, updates), real, fake, 1.0)

        def cross_entropy(logits, target):
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                logits=logits, labels=tf.fill(tf.shape(logits), target)))

        with tf.control_dependencies(self.bn_updates):
            d_loss_real = cross_entropy(d_real, self.real_label)
            d_loss_fake = cross_entropy(d_fake, 0.0)
            d_loss = d_loss_real + d_loss_fake
            if penalty is not None:
                d_loss += penalty
            g_loss = cross_entropy(d_fake, 1.0)
        trainable = tf.GraphKeys.TRAINABLE_VARIABLES
        self.g_vars = tf.get_collection(trainable, scope=self.g_scope + '/')
        self.d_vars = tf.get_collection(trainable, scope=self.d_scope + '/')

        self.summaries += [
            tf.summary.scalar('d_loss_real', d_loss_real),
            tf.summary.scalar('d_loss_fake', d_loss_fake),
            tf.summary.scalar('d_loss', d_loss),
            tf.summary.scalar('g_loss', g_loss),
            tf.summary.scalar('d_real', tf.reduce_mean(tf.nn.sigmoid(d_real))),
            tf.summary.scalar('d_fake', tf.reduce_mean(tf.nn.sigmoid(d_fake))),
            tf.summary.scalar('chi_square', pixel_histogram_chi_square(real, fake)),
        ] + ([tf.summary.scalar('penalty', penalty)] if penalty is not None else [])
        adam = {'solver': 'adam', 'learning_rate': 2e-4, 'solver_args': {'beta1': 0.5}}
        return [
            dict(adam, name='d_loss', loss=d_loss, vars=self.d_vars),
            dict(adam, name='g_loss', loss=g_loss, vars=self.g_vars),
        ]
