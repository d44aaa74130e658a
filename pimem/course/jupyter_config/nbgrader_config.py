# nbgrader's settings inside `pimem lab`, which puts this folder on JUPYTER_CONFIG_PATH. Students and
# teachers browsing their working copy need nothing from nbgrader; without a config file its server
# extension warns "No nbgrader_config.py file found" at every start. Grading happens in a grading
# folder with its own config (`pimem grading-folder`, notebooks/labs/INSTRUCTOR.md).
c = get_config()  # noqa: F821 - nbgrader's config loader provides it
c.CourseDirectory.course_id = "pimem-labs"
