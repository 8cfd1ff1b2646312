"""Task folders, image loading and caching, K-shot support lists, episodes and synthetic demo tasks."""

from monai_d2fad.data.episodes import EpisodeDataset
from monai_d2fad.data.evaluation import EvaluationDataset, EvaluationSet, evaluation_items, evaluation_sets
from monai_d2fad.data.features import TeacherFeatureCache
from monai_d2fad.data.images import ImageDataset, ReadImaged, expand_slices, load_image
from monai_d2fad.data.support import (
    draw_support,
    read_support_list,
    support_list_path,
    support_paths,
    write_support_lists,
)
from monai_d2fad.data.synthetic import SYNTHETIC_TASKS, discover_or_make_synthetic, make_synthetic_tasks
from monai_d2fad.data.tasks import (
    Task,
    discover_tasks,
    folder_items,
    leave_one_task_out,
    list_images,
    load_task,
    normal_items,
    select_tasks,
)

__all__ = [
    "SYNTHETIC_TASKS",
    "EpisodeDataset",
    "EvaluationDataset",
    "EvaluationSet",
    "ImageDataset",
    "ReadImaged",
    "Task",
    "TeacherFeatureCache",
    "discover_or_make_synthetic",
    "discover_tasks",
    "draw_support",
    "evaluation_items",
    "evaluation_sets",
    "expand_slices",
    "folder_items",
    "leave_one_task_out",
    "list_images",
    "load_image",
    "load_task",
    "make_synthetic_tasks",
    "normal_items",
    "read_support_list",
    "select_tasks",
    "support_list_path",
    "support_paths",
    "write_support_lists",
]
