namespace IsolateGrains.Guest;

/// <summary>
/// The objects the host holds handles to. A handle keeps its object alive until the host releases it
/// (when the host's <c>IsolatedObject</c> is disposed or finalized).
/// </summary>
internal static class GuestObjects
{
    private static readonly Dictionary<int, object> s_objects = new();
    private static int s_nextHandle;

    /// <summary>How many objects are held.</summary>
    public static int Count => s_objects.Count;

    /// <summary>Holds <paramref name="value"/> and returns its handle.</summary>
    public static int Add(object value)
    {
        var handle = ++s_nextHandle;
        s_objects[handle] = value;
        return handle;
    }

    /// <summary>The object behind a handle.</summary>
    public static object Get(int handle) => s_objects.TryGetValue(handle, out var value)
        ? value
        : throw new ResolutionException($"Object handle {handle} is not known in this sandbox (it was released, or belongs to another sandbox).");

    /// <summary>Lets go of a handle.</summary>
    public static void Release(int handle) => s_objects.Remove(handle);
}
