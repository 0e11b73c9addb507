"""A GAN that learns a 1-D Gaussian: the toy of John Glover's AYLIEN tutorial.

Source: John Glover, "An introduction to Generative Adversarial Networks (with code in
TensorFlow)" (AYLIEN blog, 2016; github.com/AYLIEN/gan-intro). Data: samples of
N(4, 0.5) from the `gaussian` data plugin, float32 N x 1 x 1 x 1.

G: z -> linear h -> softplus -> linear 1, fed stratified noise (evenly spaced points
over [-noise_range, noise_range] plus a small jitter, generated in the graph).
D: 3 tanh layers of 2h -> sigmoid; with `minibatch_discrimination` (class attribute) the
third layer is replaced by minibatch features (Salimans et al. 2016), which lets D see
the spread of a batch and keeps G from collapsing to a point.
Losses: D = -log D(x) - log(1 - D(G(z))), G = -log D(G(z)); two entries, D then G, both
plain SGD with a staircase exponential decay of the learning rate (the tutorial's 0.95
every 150 steps; 0.85 here settles in fewer steps).

Changes from the tutorial that make it learn for (nearly) every seed rather than some:
G's output layer and D's input layer start with small weights (std `output_init` 0.1 and
`d_input_init` 0.25 instead of 1), so D's tanh units are not saturated around the data and
G's first samples lie where D's gradient points towards the data; the minibatch features
are averaged over the batch instead of summed, so their scale does not depend on the
batch size.

Recommended recipe (a few seconds on a CPU):
    digits-gan dataset create gaussian --out GAUSS_DATASET
    digits-gan train --dataset GAUSS_DATASET --network network-gaussian-1d \
        --epochs 20 --batch-size 64 --solver sgd --lr 0.03 \
        --lr-policy step --gamma 0.85 --step-size 150 --out JOBDIR

Inference input: N x 1 x 1 x 1 float32 z ~ U(-1, 1) (scaled by noise_range inside G);
output: N x 1 x 1 x 1 float32 generated samples.
"""


def linear(x, units, name, stddev=1.0):
    """x: N x K float32 -> N x units."""
    with tf.variable_scope(name):
        w = tf.get_variable('weights', [int(x.shape[-1]), units],
                            initializer=tf.random_normal_initializer(stddev=stddev))
        b = tf.get_variable('biases', [units], initializer=tf.zeros_initializer())
    return tf.matmul(x, w) + b


def minibatch_features(h, num_kernels=5, kernel_dim=3):
    """Minibatch discrimination: h N x K -> N x (K + num_kernels), appending for each
    sample its mean closeness exp(-L1 distance) to the samples of the batch."""
    m = tf.reshape(linear(h, num_kernels * kernel_dim, 'minibatch', stddev=0.02),
                   [-1, num_kernels, kernel_dim])                                  # N x k x d
    diffs = tf.expand_dims(m, 3) - tf.expand_dims(tf.transpose(m, [1, 2, 0]), 0)  # N x k x d x N
    closeness = tf.reduce_mean(tf.exp(-tf.reduce_sum(tf.abs(diffs), 2)), 2)       # N x k
    return tf.concat([h, closeness], 1)


class UserModel(Tower):
    z_dim = 1
    z_distribution = 'uniform'  # z spans [-1, 1]; inference draws z alike
    conditional = False
    hidden = 4                      # h: G's hidden width; D's layers are 2h wide
    noise_range = 8.0               # G's noise covers [-noise_range, noise_range]
    minibatch_discrimination = True
    output_init = 0.1               # std of G's output weights (the tutorial: 1.0)
    d_input_init = 0.25             # std of D's first-layer weights (the tutorial: 1.0)

    def generator(self, z):
        """z: N x 1 in -1..1 -> N x 1 float32 samples."""
        with tf.variable_scope('generator', reuse=tf.AUTO_REUSE) as scope:
            h = tf.nn.softplus(linear(z * self.noise_range, self.hidden, 'fc0'))   # N x h
            samples = linear(h, 1, 'fc1', stddev=self.output_init)                 # N x 1
        self.g_scope = scope.name
        return samples

    def discriminator(self, samples):
        """samples: N x 1 -> N x 1 logits (D's probability is their sigmoid)."""
        with tf.variable_scope('discriminator', reuse=tf.AUTO_REUSE) as scope:
            h = tf.tanh(linear(samples, self.hidden * 2, 'fc0', stddev=self.d_input_init))  # N x 2h
            h = tf.tanh(linear(h, self.hidden * 2, 'fc1'))                          # N x 2h
            if self.minibatch_discrimination:
                h = minibatch_features(h)                                        # N x (2h + 5)
            else:
                h = tf.tanh(linear(h, self.hidden * 2, 'fc2'))                      # N x 2h
            logits = linear(h, 1, 'fc3')                                            # N x 1
        self.d_scope = scope.name
        return logits

    @model_property
    def inference(self):
        """Inference: N x 1 x 1 x 1 noise -> N x 1 x 1 x 1 float32 samples."""
        samples = self.generator(tf.reshape(self.x, [-1, 1]))
        return tf.reshape(samples, [-1, 1, 1, 1])

    @model_property
    def loss(self):
        real = tf.reshape(self.x, [-1, 1])                                          # N x 1
        batch = tf.shape(real)[0]
        # Stratified noise: evenly spaced over [-1, 1] plus a jitter of up to 0.01
        # in G's input units (the tutorial's np.linspace + 0.01 * np.random.random).
        z = tf.linspace(-1.0, 1.0, batch) + tf.random_uniform([batch], 0.0, 0.01 / self.noise_range)
        fake = self.generator(tf.reshape(z, [-1, 1]))
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake)

        def cross_entropy(logits, target):
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                logits=logits, labels=tf.fill(tf.shape(logits), target)))

        d_loss = cross_entropy(d_real, 1.0) + cross_entropy(d_fake, 0.0)
        g_loss = cross_entropy(d_fake, 1.0)
        trainable = tf.GraphKeys.TRAINABLE_VARIABLES
        self.g_vars = tf.get_collection(trainable, scope=self.g_scope + '/')
        self.d_vars = tf.get_collection(trainable, scope=self.d_scope + '/')

        mean, variance = tf.nn.moments(fake, [0, 1])
        self.summaries += [
            tf.summary.scalar('d_loss', d_loss),
            tf.summary.scalar('g_loss', g_loss),
            tf.summary.scalar('fake_mean', mean),
            tf.summary.scalar('fake_std', tf.sqrt(variance)),
        ]
        return [
            {'name': 'd_loss', 'loss': d_loss, 'vars': self.d_vars, 'solver': 'sgd'},
            {'name': 'g_loss', 'loss': g_loss, 'vars': self.g_vars, 'solver': 'sgd'},
        ]
