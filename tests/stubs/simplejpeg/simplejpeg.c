/* A stand-in for simplejpeg (which picamera2 imports on Raspberry Pi OS), hand-written
 * because neither exists on the machines that run the tests. Like the real module, it is
 * compiled against the system's numpy headers and calls numpy's C API at import
 * (import_array): under a numpy of another ABI (numpy 2 in a venv in front of apt's numpy 1)
 * the import fails, as simplejpeg's does on a Pi. Built by tests/system/test_pi_branch.py. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

/* zeros(height, width): a uint8 image, made through numpy's C API. */
static PyObject *zeros(PyObject *self, PyObject *args) {
    Py_ssize_t h, w;
    if (!PyArg_ParseTuple(args, "nn", &h, &w)) return NULL;
    npy_intp dims[2] = {h, w};
    return PyArray_ZEROS(2, dims, NPY_UINT8, 0);
}

static PyMethodDef methods[] = {
    {"zeros", zeros, METH_VARARGS, "a uint8 image of zeros, through numpy's C API"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "simplejpeg",
                                    "stand-in for simplejpeg's use of numpy's C API", -1, methods};

PyMODINIT_FUNC PyInit_simplejpeg(void) {
    import_array();
    return PyModule_Create(&module);
}
