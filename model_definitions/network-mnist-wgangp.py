"""Conditional WGAN-GP for MNIST-like digits (28 x 28 x 1, class labels).

Sources: Gulrajani et al. 2017 ("Improved Training of Wasserstein GANs"), after Arjovsky
et al. 2017 (WGAN). G is network-mnist's conditional DCGAN generator (labels concatenated
to every layer; same variable names). The critic sees the image only: two 5x5 stride-2
convolutions (32, 64 wide: network-mnist's D is as cheap), fc 1024, no batch norm (the
penalty is per sample); the label enters by projection (Miyato & Koyama 2018):
D(x, y) = psi(phi(x)) + <embed(y), phi(x)>.

Losses: critic = mean D(G(z, y), y) - mean D(x, y) + lambda E[(||grad D(x_hat, y)||_2 - 1)^2]
at x_hat uniformly between x and G(z, y) (double back-prop), lambda = penalty_weight = 10;
G = -mean D(G(z, y), y). Two loss entries: the critic every step, G every n_critic = 2
steps (loss entry key `every`), so the critic is updated twice per G update; each Adam
(4e-4, beta1 0.0, beta2 0.9).

Options (class attributes; a bad value stops with an error before any graph is built):
    loss_type       'wasserstein' | 'hinge' | 'non-saturating'       (default 'wasserstein')
    regularizer     'gp' | 'r1' | 'none'                             (default 'gp')
    penalty_weight  finite >= 0: lambda of GP, gamma of R1 (D += gamma/2 E||grad D(x)||^2)
    penalty_every   lazy regularization: the penalty on every k-th global step, times k
    n_critic        critic steps per G step (G's loss entry has every = n_critic)
    diffaugment     '' or a subset of 'color,translation,cutout' (DiffAugment on real and fake)
    learning_rate   Adam's learning rate of both entries, finite > 0 (4e-4; --lr does not apply)
    beta1, beta2    Adam's betas, each in [0, 1) (0.0, 0.9)
Inside DIGITS the entries' `every` and solvers are ignored (every entry runs each step,
with the job's one optimizer) and the global step counts entries, so a lazy interval does too.

Measured (benchmarks/zoo.py, the 4,500-digit sample, seed 0, batch 64, EMA 0.995, 300 CPU s
of training steps on 2 idle cores, 1,792 steps at 0.167 CPU s each; 10,000 samples):
conditional accuracy ratio 0.999, Frechet distance 5.39 (floor 1.98), recall 0.74. Adam
2e-4 (the default before) got 0.927 and 4.15 in the same benchmark's previous run. Older
defaults (label concatenated, 64 / 128 wide, 5 critic steps, Adam 1e-4 / 0.5) got 0.27 and
138 at 300 s.

Recommended recipe (4,500 digits: about 70 steps per epoch; G is updated on every 2nd;
about 26 epochs fit in 300 CPU s, 45 are a longer run):
    digits-gan train --dataset DATASET --network network-mnist-wgangp \
        --epochs 45 --batch-size 64 --ema-decay 0.995 --out JOBDIR

Inference input: N x 1 x 1 x (z_dim + nclasses) float32 vectors, z ~ N(0, 1) then the
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


# --- shared: zoo-options ---
def check_options(model):
    """Raise ValueError naming the first bad option of the model."""
    if model.loss_type not in LOSS_TYPES:
        raise ValueError('UserModel.loss_type must be one of %s, got %r' % (', '.join(LOSS_TYPES), model.loss_type))
    if model.regularizer not in REGULARIZERS:
        raise ValueError('UserModel.regularizer must be one of %s, got %r'
                         % (', '.join(REGULARIZERS), model.regularizer))
    non_negative_option(model, 'penalty_weight')
    positive_int_option(model, 'penalty_every')
    positive_int_option(model, 'n_critic')
    augment_policy(model)


def adversarial_losses(loss_type, d_real, d_fake):
    """(D loss, G loss) from D's logits on real and fake batches (N x 1 each):
    'non-saturating' (Goodfellow et al. 2014, G maximizes log D(G(z))), 'hinge' (Lim & Ye
    2017, Miyato et al. 2018) or 'wasserstein' (Arjovsky et al. 2017; needs a Lipschitz
    critic: the gradient penalty or spectral normalization)."""
    if loss_type == 'non-saturating':
        return (tf.reduce_mean(tf.nn.softplus(-d_real)) + tf.reduce_mean(tf.nn.softplus(d_fake)),
                tf.reduce_mean(tf.nn.softplus(-d_fake)))
    if loss_type == 'hinge':
        return (tf.reduce_mean(tf.nn.relu(1.0 - d_real)) + tf.reduce_mean(tf.nn.relu(1.0 + d_fake)),
                -tf.reduce_mean(d_fake))
    return tf.reduce_mean(d_fake) - tf.reduce_mean(d_real), -tf.reduce_mean(d_fake)


def zoo_loss_entries(model, d_loss, g_loss, d_real, d_fake, penalty, solver):
    """The two loss entries, D then G (G's every n_critic steps), each with `solver` (a
    dict of the entry keys solver, learning_rate, solver_args); sets model.d_vars and
    model.g_vars and adds the summaries: both losses, the penalty, D's mean logits."""
    trainable = tf.GraphKeys.TRAINABLE_VARIABLES
    model.g_vars = tf.get_collection(trainable, scope=model.g_scope + '/')
    model.d_vars = tf.get_collection(trainable, scope=model.d_scope + '/')
    model.summaries += [tf.summary.scalar(name, value) for name, value in (
        ('d_loss', d_loss), ('g_loss', g_loss), ('penalty', penalty),
        ('d_real', tf.reduce_mean(d_real)), ('d_fake', tf.reduce_mean(d_fake)))]
    return [dict(solver, name='d_loss', loss=d_loss, vars=model.d_vars),
            dict(solver, name='g_loss', loss=g_loss, vars=model.g_vars, every=model.n_critic)]


def check_adam_options(model):
    """Raise ValueError naming a bad learning_rate (finite > 0) or beta1 / beta2 (in [0, 1))."""
    if non_negative_option(model, 'learning_rate') == 0:
        raise ValueError('UserModel.learning_rate must be a finite number > 0, got 0')
    for name in ('beta1', 'beta2'):
        if non_negative_option(model, name) >= 1:
            raise ValueError('UserModel.%s must be a number in [0, 1), got %r' % (name, getattr(model, name)))
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


# --- shared: spectral-norm ---
def spectral_normed(model, w):
    """w / sigma(w) (Miyato et al. 2018): sigma, the largest singular value of w seen as
    an (inputs x outputs) matrix, by one power iteration per training step from the
    vector u, a non-trainable variable beside w (named '<w>_u'), so checkpoints keep it.
    The training tower's update of u is in model.sn_updates and UPDATE_OPS; a weight used
    again in the same tower (D on real, fake, penalty points) is normalized once."""
    if w.name in model.sn_weights:
        return model.sn_weights[w.name]
    outputs = int(w.shape[-1])
    matrix = tf.reshape(w, [-1, outputs])                                   # inputs x outputs
    u = tf.get_variable(w.op.name.split('/')[-1] + '_u', [1, outputs],
                        initializer=tf.random_normal_initializer(), trainable=False)
    v = tf.stop_gradient(tf.nn.l2_normalize(tf.matmul(u, matrix, transpose_b=True), axis=1))  # 1 x inputs
    u_next = tf.stop_gradient(tf.nn.l2_normalize(tf.matmul(v, matrix), axis=1))               # 1 x outputs
    sigma = tf.reduce_sum(tf.matmul(v, matrix) * u_next)
    if model.is_training and not model.is_inference:
        update = tf.assign(u, u_next)
        model.sn_updates.append(update)
        tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update)
    model.sn_weights[w.name] = w / sigma
    return model.sn_weights[w.name]


def critic_layers(model, spectral):
    """(dense, conv) layer functions for D, spectrally normalized when `spectral`:
    dense(x, units, name) and conv(x, filters, name) as linear and conv2d."""
    if not spectral:
        return linear, conv2d

    def dense(x, units, name):
        with tf.variable_scope(name):
            w = spectral_normed(model, _weight('weights', [int(x.shape[-1]), units]))
            return tf.matmul(x, w) + _bias('biases', units)

    def conv(x, filters, name, kernel=5, stride=2):
        with tf.variable_scope(name):
            w = spectral_normed(model, _weight('weights', [kernel, kernel, int(x.shape[-1]), filters]))
            y = tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding='SAME')
            return tf.nn.bias_add(y, _bias('biases', filters))
    return dense, conv
# --- end shared ---


# --- shared: mnist-zoo-networks ---
def conditional_generator(model, z, y, updates):
    """network-mnist's G (same variable names, so --weights of a network-mnist job loads
    it): z: N x z_dim, y: N x classes one-hot -> N x H x W x C images in 0..1. updates:
    where batch norm puts its moving-average updates."""
    height, width, channels = image_shape(model, 4)
    h4, w4 = height // 4, width // 4
    train = model.is_training and not model.is_inference
    with tf.variable_scope('generator', reuse=tf.AUTO_REUSE) as scope:
        h = concat_label(z, y)                                              # N x (z + y)
        h = tf.nn.relu(batch_norm(linear(h, model.fc_dim, 'fc1'), 'bn1', train, updates))
        h = concat_label(h, y)                                              # N x (1024 + y)
        h = linear(h, h4 * w4 * model.gf_dim * 2, 'fc2')
        h = tf.nn.relu(batch_norm(h, 'bn2', train, updates))
        h = tf.reshape(h, [-1, h4, w4, model.gf_dim * 2])                   # N x 7 x 7 x 128
        h = concat_label(h, y)
        h = deconv2d(h, h4 * 2, w4 * 2, model.gf_dim, 'deconv3')            # N x 14 x 14 x 64
        h = tf.nn.relu(batch_norm(h, 'bn3', train, updates))
        h = concat_label(h, y)
        h = deconv2d(h, height, width, channels, 'deconv4')                 # N x 28 x 28 x 1
    model.g_scope = scope.name
    return tf.nn.sigmoid(h)


def digit_features(model, images, spectral):
    """D's body, no batch norm (the penalties are per sample): images N x 28 x 28 x C'
    -> N x fc_dim features. Call it inside D's variable scope."""
    dense, conv = critic_layers(model, spectral)
    h = lrelu(conv(images, model.df_dim, 'conv1'))                          # N x 14 x 14 x 64
    h = lrelu(conv(h, model.df_dim * 2, 'conv2'))                           # N x 7 x 7 x 128
    h = tf.reshape(h, [-1, int(h.shape[1] * h.shape[2] * h.shape[3])])      # N x 6272
    return lrelu(dense(h, model.fc_dim, 'fc3'))                             # N x 1024


def conditional_inference(model):
    """UserModel.inference of the conditional digit GANs: N x 1 x 1 x (z_dim + classes)
    -> N x H x W x C uint8. On the train and val towers (DIGITS builds inference there
    too): G of random z and the batch's labels, with no batch-norm updates."""
    classes = class_count(model)
    if model.is_inference:
        vectors = tf.reshape(model.x, [-1, model.z_dim + classes])
        images = conditional_generator(model, vectors[:, :model.z_dim], vectors[:, model.z_dim:], [])
    else:
        z = tf.random_normal([tf.shape(model.x)[0], model.z_dim])
        images = conditional_generator(model, z, tf.one_hot(model.y, classes), [])
    return tf.cast(tf.round(images * 255.0), tf.uint8)
# --- end shared ---



class UserModel(Tower):
    z_dim = 100
    z_distribution = 'normal'   # G's training z ~ N(0, 1); inference draws z alike
    conditional = True
    classes = 10                # one-hot width where the runtime passes nclasses 0 (DIGITS)
    image_shape = (28, 28, 1)   # G's output size where DIGITS infers with input_shape 1 x 1 x D
    gf_dim = 64                 # width of G's 14 x 14 deconvolution (its 7 x 7 map has twice that)
    df_dim = 32                 # width of D's first convolution (the second has twice that)
    fc_dim = 1024               # width of the fully connected hidden layers of G and D
    loss_type = 'wasserstein'
    regularizer = 'gp'
    penalty_weight = 10.0
    penalty_every = 1
    n_critic = 2
    diffaugment = ''
    ema_decay = None  # e.g. 0.995: the runtime keeps an EMA of G's weights (--ema-decay wins)
    learning_rate = 4e-4        # Adam of both loss entries (the job's --lr does not apply)
    beta1 = 0.0
    beta2 = 0.9

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        check_options(self)
        check_adam_options(self)
        self.bn_updates = []    # G's batch-norm moving-average updates (training tower)
        self.sn_updates = []    # spectral-norm state of the shared helpers (unused: no SN here)
        self.sn_weights = {}
        self.g_scope = self.d_scope = None
        self.g_vars = self.d_vars = None

    def discriminator(self, images, y):
        """images: N x H x W x C in 0..1, y: N x classes one-hot -> N x 1 critic values."""
        with tf.variable_scope('discriminator', reuse=tf.AUTO_REUSE) as scope:
            features = digit_features(self, images, spectral=False)             # N x 1024
            logits = linear(features, 1, 'fc4')                                 # N x 1
            embed = _weight('embed', [class_count(self), self.fc_dim])          # classes x 1024
            projection = tf.reduce_sum(tf.matmul(y, embed) * features, axis=1, keepdims=True)  # N x 1
        self.d_scope = scope.name
        return logits + projection

    @model_property
    def inference(self):
        return conditional_inference(self)

    @model_property
    def loss(self):
        real = images_in(self) / 255.0                                          # N x 28 x 28 x 1
        y = class_one_hot(self)
        fake = conditional_generator(self, tf.random_normal([tf.shape(real)[0], self.z_dim]), y, self.bn_updates)
        policy = augment_policy(self)

        def critic(images):
            return self.discriminator(diff_augment(images, policy, 1.0) if policy else images, y)

        d_real, d_fake = critic(real), critic(fake)
        d_adversarial, g_loss = adversarial_losses(self.loss_type, d_real, d_fake)
        penalty = discriminator_penalty(self, critic, real, fake)
        with tf.control_dependencies(self.bn_updates + self.sn_updates):
            d_loss = tf.identity(d_adversarial + penalty, name='d_loss')
            g_loss = tf.identity(g_loss, name='g_loss')
        return zoo_loss_entries(self, d_loss, g_loss, d_real, d_fake, penalty,
                                {'solver': 'adam', 'learning_rate': self.learning_rate,
                                 'solver_args': {'beta1': self.beta1, 'beta2': self.beta2}})
