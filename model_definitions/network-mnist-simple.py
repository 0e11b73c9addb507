"""A small unconditional GAN for MNIST-like digits (28 x 28 x 1).

Source: Jon Bruner & Adit Deshpande, "Generative Adversarial Networks for Beginners"
(O'Reilly, 2017). D: two 5x5 convolutions (32, 64 filters), each ReLU + 2x2 average pool,
fc 1024, fc 1. G: z -> fc 3136 -> 56 x 56 x 1 -> BN ReLU -> 3x3 conv/2 (z_dim/2) -> BN
ReLU -> resize 56 -> 3x3 conv/2 (z_dim/4) -> BN ReLU -> resize 56 -> 1x1 conv/2 (1) ->
sigmoid. Class labels are not used.

Three loss entries as in the tutorial, each with its own Adam optimizer: D on real
images (3e-4), D on generated images (3e-4) and G (1e-4, non-saturating loss). G's entry
starts at step `pretrain_steps` (300): the first 300 batches pre-train D alone.

Batch-norm moving averages (used by the validation and inference towers) are updated by
control dependencies of the losses.

Recommended recipe (the tutorial's batch of 50; about 1 minute per epoch of 60k digits on
2 CPU cores):
    digits-gan train --dataset DATASET --network network-mnist-simple \
        --epochs 10 --batch-size 50 --out JOBDIR

Inference input: N x 1 x 1 x z_dim float32 vectors, z ~ N(0, 1); output: N x 28 x 28 x 1
uint8 images in 0..255.
"""


def _weight(name, shape):
    return tf.get_variable(name, shape, initializer=tf.truncated_normal_initializer(stddev=0.02))


def _bias(name, size):
    return tf.get_variable(name, [size], initializer=tf.zeros_initializer())


def conv2d(x, filters, name, kernel, stride=1):
    """x: N x H x W x C -> N x H/stride x W/stride x filters ('SAME' padding)."""
    with tf.variable_scope(name):
        w = _weight('weights', [kernel, kernel, int(x.shape[-1]), filters])
        y = tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding='SAME')
        return tf.nn.bias_add(y, _bias('biases', filters))


def linear(x, units, name):
    """x: N x K -> N x units."""
    with tf.variable_scope(name):
        return tf.matmul(x, _weight('weights', [int(x.shape[-1]), units])) + _bias('biases', units)


def batch_norm(x, name, is_training, updates, decay=0.99, epsilon=1e-5):
    """Batch normalization of N x H x W x K without scale (as tf.contrib's default);
    batch statistics while training (moving-average assign ops appended to `updates`),
    moving averages otherwise."""
    with tf.variable_scope(name):
        size = int(x.shape[-1])
        beta = tf.get_variable('beta', [size], initializer=tf.zeros_initializer())
        moving_mean = tf.get_variable('moving_mean', [size], initializer=tf.zeros_initializer(),
                                      trainable=False)
        moving_var = tf.get_variable('moving_variance', [size], initializer=tf.ones_initializer(),
                                     trainable=False)
    y, mean, var = tf.nn.fused_batch_norm(
        x, tf.ones([size]), beta, mean=moving_mean, variance=moving_var, epsilon=epsilon,
        is_training=is_training, exponential_avg_factor=1.0 - decay if is_training else 1.0)
    if is_training:
        updates += [tf.assign(moving_mean, mean), tf.assign(moving_var, var)]
    return y


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
    z_dim = 100
    conditional = False
    z_distribution = 'normal'
    pretrain_steps = 300  # batches during which only D trains

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        self.bn_updates = []

    def generator(self, z):
        """z: N x z_dim -> N x 28 x 28 x 1 images in 0..1."""
        train = self.is_training and not self.is_inference
        updates = self.bn_updates
        with tf.variable_scope('generator', reuse=tf.AUTO_REUSE) as scope:
            h = tf.reshape(linear(z, 56 * 56, 'fc1'), [-1, 56, 56, 1])                  # N x 56 x 56 x 1
            h = tf.nn.relu(batch_norm(h, 'bn1', train, updates))
            h = conv2d(h, self.z_dim // 2, 'conv2', kernel=3, stride=2)               # N x 28 x 28 x 50
            h = tf.image.resize(tf.nn.relu(batch_norm(h, 'bn2', train, updates)), [56, 56])  # N x 56 x 56 x 50
            h = conv2d(h, self.z_dim // 4, 'conv3', kernel=3, stride=2)               # N x 28 x 28 x 25
            h = tf.image.resize(tf.nn.relu(batch_norm(h, 'bn3', train, updates)), [56, 56])  # N x 56 x 56 x 25
            h = conv2d(h, 1, 'conv4', kernel=1, stride=2)                             # N x 28 x 28 x 1
        self.g_scope = scope.name
        return tf.nn.sigmoid(h)

    def discriminator(self, images):
        """images: N x 28 x 28 x 1 in 0..1 -> N x 1 logits."""
        def pool(h):
            return tf.nn.avg_pool2d(h, ksize=2, strides=2, padding='SAME')
        with tf.variable_scope('discriminator', reuse=tf.AUTO_REUSE) as scope:
            h = pool(tf.nn.relu(conv2d(images, 32, 'conv1', kernel=5)))               # N x 14 x 14 x 32
            h = pool(tf.nn.relu(conv2d(h, 64, 'conv2', kernel=5)))                    # N x 7 x 7 x 64
            h = tf.reshape(h, [tf.shape(h)[0], int(h.shape[1] * h.shape[2] * h.shape[3])])
            h = tf.nn.relu(linear(h, 1024, 'fc3'))                                   # N x 1024
            logits = linear(h, 1, 'fc4')                                              # N x 1
        self.d_scope = scope.name
        return logits

    @model_property
    def inference(self):
        """Inference: N x 1 x 1 x z_dim -> N x 28 x 28 x 1 uint8 images. On the train and
        val towers (DIGITS builds inference there too): G of random z."""
        if self.is_inference:
            images = self.generator(tf.reshape(self.x, [-1, self.z_dim]))
        else:
            images = self.generator(tf.random_normal([tf.shape(self.x)[0], self.z_dim]))
        return tf.cast(tf.round(images * 255.0), tf.uint8)

    @model_property
    def loss(self):
        if image_shape(self) != [28, 28, 1]:
            raise ValueError('this network makes 28 x 28 x 1 images; the dataset has %d x %d x %d images'
                             % tuple(image_shape(self)))
        real = images_in(self) / 255.0                                                         # N x 28 x 28 x 1
        z = tf.random_normal([tf.shape(real)[0], self.z_dim])
        fake = self.generator(z)
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake)

        def cross_entropy(logits, target):
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                logits=logits, labels=tf.fill(tf.shape(logits), target)))

        with tf.control_dependencies(self.bn_updates):
            d_loss_real = cross_entropy(d_real, 1.0)
            d_loss_fake = cross_entropy(d_fake, 0.0)
            g_loss = cross_entropy(d_fake, 1.0)
        trainable = tf.GraphKeys.TRAINABLE_VARIABLES
        self.g_vars = tf.get_collection(trainable, scope=self.g_scope + '/')
        self.d_vars = tf.get_collection(trainable, scope=self.d_scope + '/')

        self.summaries += [
            tf.summary.scalar('d_loss_real', d_loss_real),
            tf.summary.scalar('d_loss_fake', d_loss_fake),
            tf.summary.scalar('g_loss', g_loss),
            tf.summary.scalar('d_real', tf.reduce_mean(tf.nn.sigmoid(d_real))),
            tf.summary.scalar('d_fake', tf.reduce_mean(tf.nn.sigmoid(d_fake))),
        ]
        return [
            {'name': 'd_loss_real', 'loss': d_loss_real, 'vars': self.d_vars,
             'solver': 'adam', 'learning_rate': 3e-4},
            {'name': 'd_loss_fake', 'loss': d_loss_fake, 'vars': self.d_vars,
             'solver': 'adam', 'learning_rate': 3e-4},
            {'name': 'g_loss', 'loss': g_loss, 'vars': self.g_vars,
             'solver': 'adam', 'learning_rate': 1e-4, 'start_step': self.pretrain_steps},
        ]
