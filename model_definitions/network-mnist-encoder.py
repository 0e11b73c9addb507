"""Encoder for the conditional MNIST GAN (network-mnist.py): image -> (z, class).

Trained so that the frozen generator G(z, class) reconstructs the image.

Source: the NVIDIA DIGITS GAN example's encoder (digits/examples/gan/network-mnist-encoder.py):
a discriminator-shaped network whose head predicts z and feeds the trained generator,
trained with an L2 loss between the input and G's reconstruction. Here the encoder also
has a class head (softmax over the dataset's classes) instead of DIGITS' hard-coded
class 3, so the class given to G at inference is either an input or inferred.

Networks: E = D's body (two stride-2 5x5 convolutions, a 1024-unit fully connected
layer; batch norm and leaky ReLU as in D, no label input) with two heads: z (tanh, as
the GAN's z ~ U(-1, 1); linear for a 'normal' z) and class logits. G is network-mnist.py's
generator with the SAME variable names, so `--weights GAN_JOB` loads it; it is frozen:
its variables are in no loss entry and its batch norm always uses the GAN's moving
averages (never updated here).

Losses (two entries over the encoder's variables only, each with Adam 2e-3, beta1 0.9):
- reconstruction: mean per-pixel squared error between x and G(E_z(x), y) in 0..1, where
  y is the TRUE class while training (so G is asked for the right digit);
- classification: softmax cross-entropy of the class head against the true class.
Summaries: mse, class_accuracy.

Inference (`inference_input = 'image'`): x is N x 28 x 28 x 1 in 0..255; y is None (the
class is inferred by the class head, as in DIGITS) or int64 (N,) class ids, where -1
means "infer this one". Output: {'z': float32 N x z_dim, 'images': uint8 N x 28 x 28 x 1
reconstruction G(z, class), 'classes': int64 N, the class given to G}.

Recommended recipe (train_options.MNIST_ENCODER_RECIPE: the GAN job of network-mnist's
recipe, the same 5k dataset; 630 steps, the learning rate decaying linearly to 0, about
115 CPU seconds on 2 cores). Measured on the 500 held-out digits (12-epoch EMA GAN; see
BENCHMARKS.md): MSE of G(E(x)) 0.0192, the judge classifier recognises 96.8% of the
reconstructions (20 epochs at a fixed 1e-3: 0.0183 and 97.2%; 110 against 233 CPU s):
    digits-gan train --dataset DATASET --network network-mnist-encoder --weights GAN_JOB \
        --epochs 9 --batch-size 64 --lr-policy poly --power 1 --out ENCODER_JOB
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


class UserModel(Tower):
    z_dim = 100                 # the GAN's z size
    z_distribution = 'uniform'  # the GAN's z distribution: 'uniform' -> tanh z head
    conditional = True
    inference_input = 'image'
    classes = 10                # one-hot width where the runtime passes nclasses 0 (DIGITS)
    flat_output = False         # True: inference returns DIGITS' one flat [z | pixels] tensor
    gf_dim = 64                 # G's widths: as in network-mnist.py (must match its checkpoint)
    fc_dim = 1024
    ef_dim = 64                 # width of E's first convolution (the second has twice that)
    learning_rate = 2e-3        # with the recipe's linear decay to 0 (a fixed 3e-3 plateaus at MSE 0.026)

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        self.bn_updates = []

    def generator(self, z, y):
        """network-mnist.py's G, frozen: z N x z_dim, y N x classes -> N x H x W x C in 0..1.
        Batch norm always uses the GAN's moving averages and creates no update op."""
        height, width, channels = image_shape(self, 4)
        h4, w4 = height // 4, width // 4
        frozen, no_updates = False, []
        with tf.variable_scope('generator', reuse=tf.AUTO_REUSE):
            h = concat_label(z, y)                                              # N x (z + y)
            h = tf.nn.relu(batch_norm(linear(h, self.fc_dim, 'fc1'), 'bn1', frozen, no_updates))
            h = concat_label(h, y)                                              # N x (1024 + y)
            h = linear(h, h4 * w4 * self.gf_dim * 2, 'fc2')
            h = tf.nn.relu(batch_norm(h, 'bn2', frozen, no_updates))
            h = tf.reshape(h, [-1, h4, w4, self.gf_dim * 2])                    # N x 7 x 7 x 128
            h = concat_label(h, y)
            h = deconv2d(h, h4 * 2, w4 * 2, self.gf_dim, 'deconv3')             # N x 14 x 14 x 64
            h = tf.nn.relu(batch_norm(h, 'bn3', frozen, no_updates))
            h = concat_label(h, y)
            h = deconv2d(h, height, width, channels, 'deconv4')                 # N x 28 x 28 x 1
        return tf.nn.sigmoid(h)

    def encoder(self, images):
        """images: N x H x W x C in 0..1 -> (z N x z_dim, class logits N x classes)."""
        train, updates = self.is_training, self.bn_updates
        with tf.variable_scope('encoder', reuse=tf.AUTO_REUSE) as scope:
            h = lrelu(conv2d(images, self.ef_dim, 'conv1'))                                     # N x 14 x 14 x 64
            h = lrelu(batch_norm(conv2d(h, self.ef_dim * 2, 'conv2'), 'bn2', train, updates))   # N x 7 x 7 x 128
            h = tf.reshape(h, [tf.shape(h)[0], int(h.shape[1] * h.shape[2] * h.shape[3])])
            h = lrelu(batch_norm(linear(h, self.fc_dim, 'fc3'), 'bn3', train, updates))         # N x 1024
            z = linear(h, self.z_dim, 'z')                                                      # N x z_dim
            if self.z_distribution == 'uniform':
                z = tf.tanh(z)
            class_logits = linear(h, class_count(self), 'classes')                              # N x classes
        self.e_scope = scope.name
        return z, class_logits

    @model_property
    def inference(self):
        """N x H x W x C images 0..255 (and y: None or int64 N, -1 = infer) ->
        {'z', 'images' (uint8 reconstruction), 'classes' (int64, the class given to G)}."""
        z, class_logits = self.encoder(images_in(self) / 255.0)
        classes = tf.argmax(class_logits, 1)
        if self.y is not None:
            given = tf.cast(self.y, tf.int64)
            classes = tf.where(given >= 0, given, classes)
        images = self.generator(z, tf.one_hot(classes, class_count(self)))
        if self.flat_output:  # DIGITS: N x (z_dim + H*W*C), pixels in 0..255
            return tf.concat([z, tf.reshape(images * 255.0, [tf.shape(z)[0], -1])], 1)
        return {'z': z, 'images': tf.cast(tf.round(images * 255.0), tf.uint8), 'classes': classes}

    @model_property
    def loss(self):
        real = images_in(self) / 255.0                                          # N x 28 x 28 x 1
        z, class_logits = self.encoder(real)
        reconstruction = self.generator(z, class_one_hot(self))
        with tf.control_dependencies(self.bn_updates):
            mse = tf.reduce_mean(tf.square(reconstruction - real))
            class_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=self.y, logits=class_logits))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(class_logits, 1), self.y), tf.float32))
        self.e_vars = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope=self.e_scope + '/')
        self.summaries += [
            tf.summary.scalar('mse', mse),
            tf.summary.scalar('class_accuracy', accuracy),
        ]
        adam = {'solver': 'adam', 'learning_rate': self.learning_rate, 'solver_args': {'beta1': 0.9}}
        return [
            dict(adam, name='reconstruction', loss=mse, vars=self.e_vars),
            dict(adam, name='classification', loss=class_loss, vars=self.e_vars),
        ]
