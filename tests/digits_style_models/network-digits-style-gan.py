"""A conditional GAN written as NVIDIA DIGITS' examples/gan files are written (TF 1.x):
its own `import tensorflow as tf`, tf.contrib.layers.batch_norm with in-place updates,
z_dim / y_dim set on the instance in __init__, the graph built in __init__, variables
picked by 'g_' / 'd_' in their names, three loss entries. Small widths for fast tests."""
import tensorflow as tf


class batch_norm(object):
    """Callable batch norm in DIGITS' style."""

    def __init__(self, name, momentum=0.9, epsilon=1e-5):
        self.name, self.momentum, self.epsilon = name, momentum, epsilon

    def __call__(self, x, train=True):
        return tf.contrib.layers.batch_norm(x, decay=self.momentum, updates_collections=None,
                                            epsilon=self.epsilon, scale=True, is_training=train,
                                            scope=self.name)


def dense(x, size, scope):
    with tf.variable_scope(scope):
        w = tf.get_variable('Matrix', [x.get_shape().as_list()[1], size], tf.float32,
                            tf.random_normal_initializer(stddev=0.02))
        b = tf.get_variable('bias', [size], initializer=tf.constant_initializer(0.0))
        return tf.matmul(x, w) + b


class UserModel(Tower):

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        self.z_dim = 8
        self.y_dim = 10
        self.image_size = 28
        self.c_dim = 1
        self.batch_size = tf.shape(self.x)[0]
        self.g_bn0 = batch_norm(name='g_bn0')
        self.d_bn1 = batch_norm(name='d_bn1')
        self.build_model()

    @model_property
    def inference(self):
        return tf.to_int32(self.G * 255)

    @model_property
    def loss(self):
        return [
            {'loss': self.d_loss_real, 'vars': self.d_vars},
            {'loss': self.d_loss_fake, 'vars': self.d_vars},
            {'loss': self.g_loss, 'vars': self.g_vars},
        ]

    def build_model(self):
        if self.is_inference:
            flat = tf.reshape(self.x, shape=[self.batch_size, self.z_dim + self.y_dim])
            self.G = self.generator(flat[:, :self.z_dim], flat[:, self.z_dim:])
            return
        z = tf.random_normal(shape=[self.batch_size, self.z_dim], dtype=tf.float32)
        images = tf.reshape(self.x, [self.batch_size, self.image_size, self.image_size, self.c_dim]) / 255.
        y = tf.one_hot(self.y, self.y_dim)
        self.G = self.generator(z, y)
        d_logits = self.discriminator(images, y)
        d_logits_ = self.discriminator(self.G, y, reuse=True)
        ce = tf.nn.sigmoid_cross_entropy_with_logits
        self.d_loss_real = tf.reduce_mean(ce(logits=d_logits, labels=tf.ones_like(d_logits)), name='loss_D_real')
        self.d_loss_fake = tf.reduce_mean(ce(logits=d_logits_, labels=tf.zeros_like(d_logits_)), name='loss_D_fake')
        self.g_loss = tf.reduce_mean(ce(logits=d_logits_, labels=tf.ones_like(d_logits_)), name='loss_G')
        self.summaries.append(tf.summary.scalar('g_loss', self.g_loss))
        t_vars = tf.trainable_variables()
        self.g_vars = [var for var in t_vars if 'g_' in var.name]
        self.d_vars = [var for var in t_vars if 'd_' in var.name]

    def discriminator(self, image, y, reuse=False):
        with tf.variable_scope('discriminator') as scope:
            if reuse:
                scope.reuse_variables()
            h = tf.reshape(image, [self.batch_size, self.image_size * self.image_size * self.c_dim])
            h = tf.nn.relu(self.d_bn1(dense(tf.concat([h, y], 1), 32, 'd_h0_lin'), train=self.is_training))
            return dense(tf.concat([h, y], 1), 1, 'd_h1_lin')

    def generator(self, z, y):
        with tf.variable_scope('generator'):
            h = tf.nn.relu(self.g_bn0(dense(tf.concat([z, y], 1), 32, 'g_h0_lin'),
                                      train=self.is_training and not self.is_inference))
            h = dense(tf.concat([h, y], 1), self.image_size * self.image_size * self.c_dim, 'g_h1_lin')
            return tf.reshape(tf.nn.sigmoid(h), [self.batch_size, self.image_size, self.image_size, self.c_dim])
