"""An encoder written as NVIDIA DIGITS' examples/gan encoder files are written (TF 1.x):
its own `import tensorflow as tf`, tf.contrib.layers.batch_norm, z_dim set on the
instance, and ONE flat inference output per image: [z | reconstruction pixels 0..255]."""
import tensorflow as tf
import tensorflow.contrib.slim as slim


def dense(x, size, scope):
    with tf.variable_scope(scope):
        w = tf.get_variable('Matrix', [x.get_shape().as_list()[1], size], tf.float32,
                            tf.random_normal_initializer(stddev=0.02))
        b = tf.get_variable('bias', [size], initializer=tf.constant_initializer(0.0))
        return tf.matmul(x, w) + b


class UserModel(Tower):

    def __init__(self, *args, **kwargs):
        super(UserModel, self).__init__(*args, **kwargs)
        self.z_dim = 6
        self.image_size = 28
        self.c_dim = 1
        self.batch_size = tf.shape(self.x)[0]
        self.build_model()

    @model_property
    def inference(self):
        images_flat = tf.reshape(self.G * 255, [self.batch_size, self.image_size * self.image_size * self.c_dim])
        z_flat = tf.reshape(self.z, [self.batch_size, self.z_dim])
        return tf.concat([z_flat, images_flat], 1)

    @model_property
    def loss(self):
        return [{'loss': self.mse, 'vars': self.e_vars}]

    def build_model(self):
        pixels = self.image_size * self.image_size * self.c_dim
        images = tf.reshape(self.x, [self.batch_size, pixels]) / 255.
        with tf.variable_scope('encoder'):
            h = slim.batch_norm(dense(images, 32, 'e_h0_lin'), is_training=self.is_training, scale=True)
            self.z = dense(tf.nn.relu(h), self.z_dim, 'e_z')
        with tf.variable_scope('generator'):
            self.G = tf.reshape(tf.nn.sigmoid(dense(self.z, pixels, 'e_g_lin')),
                                [self.batch_size, self.image_size, self.image_size, self.c_dim])
        self.mse = tf.reduce_mean(tf.square(tf.reshape(self.G, [self.batch_size, pixels]) - images), name='loss_E')
        self.e_vars = [var for var in tf.trainable_variables() if 'e_' in var.name]
