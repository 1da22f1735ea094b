"""Training across workers with `tf.distribute.MultiWorkerMirroredStrategy`, for `--distribute multi_worker`.

Keras 3.15's `fit` fails under that strategy (keras-team/keras#20585: it reduces nested per-replica
batches), so this loop does what `fit` and the pipeline's callbacks do, in the strategy's own terms:
synchronous steps whose gradients the optimizer all-reduces across workers, a validation loss each
epoch, early stopping that restores the best weights, a checkpoint every epoch that a restarted run
resumes from, the CSV history and TensorBoard scalars.
"""

import csv
import json
import shutil

import keras
import numpy as np
import tensorflow as tf


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
    train_batches = strategy.experimental_distribute_dataset(train_dataset)
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

    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    backup_dir = run_dir / "backup"
    manager = tf.train.CheckpointManager(checkpoint, str(backup_dir), max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        print(f"Resuming after epoch {int(epoch.numpy())} from {manager.latest_checkpoint}")
        from apps.pipeline import keep_history_before  # the pipeline imports this module

        keep_history_before(history_path, int(epoch.numpy()))
    writer = tf.summary.create_file_writer(str(run_dir / "logs"))
    best_loss, best_weights, waited = np.inf, None, 0
    while int(epoch.numpy()) < config.epochs:
        loss = mean_loss(train_step, train_batches)
        validation_loss = mean_loss(validation_step, validation_batches)
        print(f"Epoch {int(epoch.numpy()) + 1}/{config.epochs} - loss: {loss:.4f} - val_loss: {validation_loss:.4f}")
        with writer.as_default():
            tf.summary.scalar("loss", loss, step=epoch)
            tf.summary.scalar("val_loss", validation_loss, step=epoch)
        new_file = not history_path.exists()
        with open(history_path, "a", newline="") as handle:
            history = csv.writer(handle)
            if new_file:
                history.writerow(["epoch", "loss", "val_loss"])
            history.writerow([int(epoch.numpy()), loss, validation_loss])
        epoch.assign_add(1)
        manager.save()  # every worker saves: the strategy's collectives need all of them
        # The resume marker keras.callbacks.BackupAndRestore also writes: the pipeline keeps the history
        # of a run that has one; the restored epoch above then trims it exactly.
        (backup_dir / "training_metadata.json").write_text(json.dumps({"epoch": int(epoch.numpy())}))
        if validation_loss < best_loss:
            best_loss, best_weights, waited = validation_loss, model.get_weights(), 0
        else:
            waited += 1
            if waited >= config.patience:
                print(f"Early stopping: no validation improvement for {waited} epochs")
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    shutil.rmtree(backup_dir, ignore_errors=True)
