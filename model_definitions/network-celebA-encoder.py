"""Encoder for the 64 x 64 face GAN (network-celebA.py): image -> z.

Trained so that the frozen generator G(z) reconstructs the image.

Source: the NVIDIA DIGITS GAN example's encoder (digits/examples/gan/network-celebA-encoder.py):
a discriminator-shaped network whose head predicts z and feeds the trained generator,
trained with an L2 loss between the input and G's reconstruction. Its z's are what
`digits-gan attributes` averages into attribute vectors.

Networks: E = D's body (four stride-2 5x5 convolutions, 64 -> 128 -> 256 -> 512 wide, batch
norm and leaky ReLU as in D) with a z head (tanh, as the GAN's z ~ U(-1, 1); linear for a
'normal' z). G is network-celebA.py's generator with the SAME variable names, so
`--weights GAN_JOB` loads it; it is frozen: its variables are in no loss entry and its
batch norm always uses the GAN's moving averages (never updated here). The dataset's
attribute labels are not used.

Loss (one entry over the encoder's variables only, Adam 1e-3, beta1 0.9): mean per-pixel
squared error between x and G(E(x)), both in 0..1. Summary: mse.

Inference (`inference_input = 'image'`): x is N x H x W x 3 in 0..255. Output:
{'z': float32 N x z_dim, 'images': uint8 N x H x W x 3 reconstruction G(z)}.

Recommended recipe (GPU; the GAN job trained with network-celebA's recipe on the same
dataset):
    digits-gan train --dataset CELEBA_DATASET --network network-celebA-encoder \
        --weights GAN_JOB --epochs 5 --batch-size 64 --out ENCODER_JOB
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
    conditional = False
    inference_input = 'image'
    flat_output = False         # True: inference returns DIGITS' one flat [z | pixels] tensor
    gf_dim = 64                 # G's width: as in network-celebA.py (must match its checkpoint)
    ef_dim = 64                 # width of E's first convolution; the layers after it have 2x, 4x, 8x
    learning_rate = 1e-3

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        self.bn_updates = []

    def generator(self, z):
        """network-celebA.py's G, frozen: z N x z_dim -> N x H x W x C images in -1..1.
        Batch norm always uses the GAN's moving averages and creates no update op."""
        height, width, channels = image_shape(self, 16)
        h16, w16 = height // 16, width // 16
        frozen, no_updates = False, []
        with tf.variable_scope('generator', reuse=tf.AUTO_REUSE):
            h = linear(z, h16 * w16 * self.gf_dim * 8, 'fc0')
            h = tf.reshape(h, [-1, h16, w16, self.gf_dim * 8])      # N x 4 x 4 x 512
            h = tf.nn.relu(batch_norm(h, 'bn0', frozen, no_updates))
            h = tf.nn.relu(batch_norm(deconv2d(h, h16 * 2, w16 * 2, self.gf_dim * 4, 'deconv1'), 'bn1', frozen, no_updates))  # N x 8 x 8 x 256
            h = tf.nn.relu(batch_norm(deconv2d(h, h16 * 4, w16 * 4, self.gf_dim * 2, 'deconv2'), 'bn2', frozen, no_updates))  # N x 16 x 16 x 128
            h = tf.nn.relu(batch_norm(deconv2d(h, h16 * 8, w16 * 8, self.gf_dim, 'deconv3'), 'bn3', frozen, no_updates))      # N x 32 x 32 x 64
            h = deconv2d(h, height, width, channels, 'deconv4')                                                             # N x 64 x 64 x 3
        return tf.nn.tanh(h)

    def encoder(self, images):
        """images: N x H x W x C in -1..1 -> z N x z_dim."""
        train, updates = self.is_training, self.bn_updates
        with tf.variable_scope('encoder', reuse=tf.AUTO_REUSE) as scope:
            h = lrelu(conv2d(images, self.ef_dim, 'conv0'))                                        # N x 32 x 32 x 64
            h = lrelu(batch_norm(conv2d(h, self.ef_dim * 2, 'conv1'), 'bn1', train, updates))      # N x 16 x 16 x 128
            h = lrelu(batch_norm(conv2d(h, self.ef_dim * 4, 'conv2'), 'bn2', train, updates))      # N x 8 x 8 x 256
            h = lrelu(batch_norm(conv2d(h, self.ef_dim * 8, 'conv3'), 'bn3', train, updates))      # N x 4 x 4 x 512
            h = tf.reshape(h, [tf.shape(h)[0], int(h.shape[1] * h.shape[2] * h.shape[3])])
            z = linear(h, self.z_dim, 'z')                                                         # N x z_dim
            if self.z_distribution == 'uniform':
                z = tf.tanh(z)
        self.e_scope = scope.name
        return z

    @model_property
    def inference(self):
        """N x H x W x C images 0..255 -> {'z', 'images' (uint8 reconstruction G(z))}."""
        z = self.encoder(images_in(self) / 127.5 - 1.0)
        images = self.generator(z)
        if self.flat_output:  # DIGITS: N x (z_dim + H*W*C), pixels in 0..255
            return tf.concat([z, tf.reshape((images + 1.0) * 127.5, [tf.shape(z)[0], -1])], 1)
        return {'z': z, 'images': tf.cast(tf.round((images + 1.0) * 127.5), tf.uint8)}

    @model_property
    def loss(self):
        real = images_in(self) / 127.5 - 1.0                                                 # N x 64 x 64 x 3
        reconstruction = self.generator(self.encoder(real))
        with tf.control_dependencies(self.bn_updates):
            # (a - b)^2 in -1..1 is 4x the squared error in 0..1
            mse = tf.reduce_mean(tf.square(reconstruction - real)) / 4.0
        self.e_vars = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope=self.e_scope + '/')
        self.summaries.append(tf.summary.scalar('mse', mse))
        return [{'name': 'reconstruction', 'loss': mse, 'vars': self.e_vars, 'solver': 'adam',
                 'learning_rate': self.learning_rate, 'solver_args': {'beta1': 0.9}}]
