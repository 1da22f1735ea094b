"""Training across workers with `tf.distribute.MultiWorkerMirroredStrategy`, for `--distribute multi_worker`.

Keras 3.15's `fit` fails under that strategy (keras-team/keras#20585: it reduces nested per-replica
batches), so this loop does what `fit` and the pipeline's callbacks do, in the strategy's own terms:
synchronous steps whose gradients the optimizer all-reduces across workers, a validation loss each
epoch, early stopping and the time budget, ending with the best weights, the backup of apps/training.py
that a restarted run resumes from, the CSV history and TensorBoard scalars.
"""

import csv
import itertools
import time

import keras
import numpy as np
import tensorflow as tf

from apps import training


def replica_loss(model, inputs, targets, training, replicas):
    """This replica's share of the global mean loss: the optimizer sums the replicas' gradients."""
    loss_function = keras.losses.get(model.loss)
    predictions = model(inputs, training=training)
    if len(targets.shape) < len(predictions.shape):  # as compile() does: (batch,) labels, (batch, 1) outputs
        targets = tf.reshape(targets, tf.shape(predictions))
    loss = tf.reduce_mean(loss_function(targets, predictions))
    return loss / replicas


def fit_across_workers(model, strategy, train_dataset, validation_dataset, config, run_dir, history_path):
    replicas = strategy.num_replicas_in_sync
    validation_batches = strategy.experimental_distribute_dataset(validation_dataset)

    @tf.function
    def train_step(inputs, targets):
        def step(inputs, targets):
            with tf.GradientTape() as tape:
                loss = replica_loss(model, inputs, targets, True, replicas)
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply(gradients, model.trainable_variables)
            return loss

        return strategy.reduce("SUM", strategy.run(step, args=(inputs, targets)), axis=None)

    @tf.function
    def validation_step(inputs, targets):
        losses = strategy.run(lambda x, y: replica_loss(model, x, y, False, replicas), args=(inputs, targets))
        return strategy.reduce("SUM", losses, axis=None)

    def mean_loss(step, batches):
        return float(np.mean([step(inputs, targets).numpy() for inputs, targets in batches]))

    @tf.function
    def count_replicas(flag):
        """How many replicas (one per worker on CPUs) pass a `flag` of 1.0."""
        return strategy.reduce("SUM", strategy.run(lambda value: value, args=(flag,)), axis=None)

    backup = training.Backup(run_dir / "backup", model, config)
    state = backup.restore()
    batches, steps = training.batches_from_epoch(train_dataset, state.epoch)
    train_batches = iter(strategy.experimental_distribute_dataset(batches))
    writer = tf.summary.create_file_writer(str(run_dir / "logs"))
    last_epoch_end = time.perf_counter()
    while not state.finished(config.epochs):
        epoch = state.epoch
        loss = mean_loss(train_step, itertools.islice(train_batches, steps))
        validation_loss = mean_loss(validation_step, validation_batches)
        print(f"Epoch {epoch + 1}/{config.epochs} - loss: {loss:.4f} - val_loss: {validation_loss:.4f}")
        # The epoch's scalars and history row come before its backup, as in the pipeline's fit.
        with writer.as_default():
            tf.summary.scalar("loss", loss, step=epoch)
            tf.summary.scalar("val_loss", validation_loss, step=epoch)
        new_file = not history_path.exists()
        with open(history_path, "a", newline="") as handle:
            history = csv.writer(handle)
            if new_file:
                history.writerow(["epoch", "loss", "val_loss"])
            history.writerow([epoch, loss, validation_loss])
        now = time.perf_counter()
        state.end_epoch(validation_loss, now - last_epoch_end, config.patience, config.time_budget_minutes)
        last_epoch_end = now
        # Every worker reads its own clock for the time budget, but all must stop together.
        if float(count_replicas(tf.constant(float(bool(state.stopped))))) and not state.stopped:
            state.stopped = "another worker's time budget"
        backup.save(state)  # every worker saves: the strategy's collectives need all of them
        if state.stopped:
            print(f"Stopping after epoch {epoch + 1}: {state.stopped}.")
    backup.finish(state)
    return state
