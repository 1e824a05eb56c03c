using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Serializes a lambda's closure object field by field: a MessagePack map from field name to the
/// field's value serialized as its declared type, with nested closures as nested maps. Only the
/// fields the lambda uses are written (see <see cref="ClosureFields"/>); the guest creates the
/// closure (through the compiler's empty constructor, or uninitialized) and sets those fields. Plans are cached per method and
/// per closure type, so the reflection (attribute checks, field lists, name encoding) happens once:
/// on the guest, an interpreter, that reflection used to cost more than the call itself.
/// </summary>
internal static class ClosureSerializer
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
    private static readonly ConcurrentDictionary<MethodInfo, Dictionary<Type, FieldInfo[]>?> s_usedFields = new();
    private static readonly ConcurrentDictionary<(MethodInfo, Type), ClosureWriter> s_writers = new();
    private static readonly ConcurrentDictionary<Type, ClosureReader> s_readers = new();

    /// <summary>Writes the target of a delegate to <paramref name="method"/> (a closure, or any object for a method group).</summary>
    public static void Serialize(ref MessagePackWriter writer, MethodInfo method, object target)
    {
        var type = target.GetType();
        if (WriterFor(method, type).Fields is not { } fields)
        {
            MessagePackSerializer.Serialize(type, ref writer, target, IsolatedSerializer.Options);
            return;
        }
        WriteClosure(ref writer, target, fields, method);
    }

    /// <summary>Reads an object of <paramref name="type"/> written by <see cref="Serialize"/>.</summary>
    public static object Deserialize(ref MessagePackReader reader, Type type) => Deserialize(ref reader, ReaderFor(type));

    /// <summary>Reads an object of <paramref name="plan"/>'s type written by <see cref="Serialize"/> (callers that read one type often keep its plan).</summary>
    public static object Deserialize(ref MessagePackReader reader, ClosureReader plan)
    {
        var type = plan.Type;
        if (!plan.IsClosure)
        {
            return TypeCodec.For(type).Deserialize(ref reader)
                ?? throw new MessagePackSerializationException($"The target of type {type.FullName} was null.");
        }
        return ReadClosure(ref reader, plan);
    }

    /// <summary>The names of the fields of closure <paramref name="type"/> that calls of <paramref name="method"/> send (none when it is not a closure).</summary>
    public static IReadOnlyList<string> UsedFieldNames(MethodInfo method, Type type) =>
        WriterFor(method, type).Fields is { } fields ? Array.ConvertAll(fields, f => f.Field.Name) : [];

    /// <summary>
    /// Does the first-use work of reading targets of <paramref name="type"/> (its read plan, the formatters
    /// of <paramref name="capturedFields"/>) without creating one, so that no user code runs. Only the
    /// fields calls carry are touched (see <see cref="FieldSlot.IsClosure"/>). Best effort: what cannot be
    /// prepared is left for the first call.
    /// </summary>
    public static void Prepare(Type type, IReadOnlyList<string> capturedFields)
    {
        var plan = ReaderFor(type);
        if (!plan.IsClosure)
        {
            PrepareFormatter(type);
            return;
        }
        // Lays the type out (loading what its fields need) and compiles the constructor calls use, as the first call
        // would, without running code of the user's: only a type without a static constructor is created, and a closure
        // class's constructor is the compiler's empty one.
        object? blank = null;
        if (type.TypeInitializer is null)
        {
            blank = plan.Create();
        }
        else
        {
            plan.PrepareCreate(); // compiled, not run: creating one could run the static constructor
        }
        foreach (var name in capturedFields)
        {
            if (plan.TryFind(name) is { IsClosure: false } slot)
            {
                PrepareFormatter(slot.Field.FieldType);
                try
                {
                    var reader = slot.ValueReader;
                    if (blank is not null)
                    {
                        reader.StoreDefault(blank); // compiles the setter; stores the value the field already has
                    }
                }
                catch (Exception e) when (e is MessagePackSerializationException or TypeInitializationException or NotSupportedException or ArgumentException or InvalidOperationException)
                {
                    // Left for the first call, which reports it properly.
                }
            }
        }
    }

    /// <summary>Builds (and caches) the serializer's formatter for <paramref name="type"/>, if it has one.</summary>
    public static void PrepareFormatter(Type type)
    {
        try
        {
            TypeCodec.For(type).Prepare();
        }
        catch (Exception e) when (e is MessagePackSerializationException or TypeInitializationException or NotSupportedException or ArgumentException)
        {
            // Left for the first call, which reports it properly.
        }
    }

    private static ClosureWriter WriterFor(MethodInfo method, Type type) =>
        s_writers.GetOrAdd((method, type), static key => ClosureWriter.For(key.Item1, key.Item2));

    /// <summary>How targets of <paramref name="type"/> are read (cached per type).</summary>
    public static ClosureReader ReaderFor(Type type) =>
        s_readers.TryGetValue(type, out var plan) ? plan : s_readers.GetOrAdd(type, static t => new ClosureReader(t));

    private static void WriteClosure(ref MessagePackWriter writer, object closure, FieldSlot[] fields, MethodInfo method)
    {
        writer.WriteMapHeader(fields.Length);
        foreach (var slot in fields)
        {
            writer.WriteRaw(slot.EncodedName);
            var value = slot.Field.GetValue(closure);
            if (slot.IsClosure && value is not null && WriterFor(method, value.GetType()).Fields is { } nested)
            {
                WriteClosure(ref writer, value, nested, method);
                continue;
            }
            try
            {
                MessagePackSerializer.Serialize(slot.Field.FieldType, ref writer, value, IsolatedSerializer.Options);
            }
            catch (MessagePackSerializationException e)
            {
                var field = slot.Field;
                var what = field.Name == "<>4__this" ? $"'this' ({field.FieldType.FullName})" : $"'{field.Name}' ({field.FieldType.FullName})";
                throw new MessagePackSerializationException(
                    $"The lambda captures {what}, which cannot be serialized: {e.InnerException?.Message ?? e.Message}. Capture serializable values in locals instead.", e);
            }
        }
    }

    private static object ReadClosure(ref MessagePackReader reader, ClosureReader plan)
    {
        var closure = plan.Create();
        var count = reader.ReadMapHeader();
        for (var i = 0; i < count; i++)
        {
            var slot = plan.Find(ref reader, i);
            if (slot.IsClosure && reader.NextMessagePackType == MessagePackType.Map)
            {
                slot.Field.SetValue(closure, ReadClosure(ref reader, ReaderFor(slot.Field.FieldType)));
            }
            else
            {
                slot.ValueReader.Read(ref reader, closure);
            }
        }
        return closure;
    }

    /// <summary>One field of a closure type, with what is worked out once about it.</summary>
    internal sealed class FieldSlot(FieldInfo field)
    {
        public FieldInfo Field { get; } = field;

        private byte[]? _encodedName;
        private byte[]? _utf8Name;

        /// <summary>The field's name as the MessagePack string that goes on the wire (host side).</summary>
        public byte[] EncodedName => _encodedName ??= MessagePackSerializer.Serialize(Field.Name, MessagePackSerializerOptions.Standard);

        /// <summary>The field's name in UTF-8, to match names on the wire without decoding them (guest side).</summary>
        public byte[] Utf8Name => _utf8Name ??= System.Text.Encoding.UTF8.GetBytes(Field.Name);

        private bool? _isClosure;

        /// <summary>
        /// True when the field's type is itself a closure type (sent as a nested map). Worked out on first
        /// use, never for fields no call carries: resolving the type of such a field can fail (a host-only
        /// type) and the runtime would then remember that failure against the whole closure type.
        /// </summary>
        public bool IsClosure => _isClosure ??= ClosureFields.IsClosureType(Field.FieldType);

        private ClosureFieldReader? _valueReader;

        /// <summary>Reads the field's value and stores it (guest side); built on first use.</summary>
        public ClosureFieldReader ValueReader => _valueReader ??= ClosureFieldReader.For(Field);
    }

    /// <summary>How a closure of one run-time type is written for one method (null fields: not a closure, serialized whole).</summary>
    private sealed class ClosureWriter(FieldSlot[]? fields)
    {
        public FieldSlot[]? Fields { get; } = fields;

        public static ClosureWriter For(MethodInfo method, Type type)
        {
            if (!ClosureFields.IsClosureType(type))
            {
                return new ClosureWriter(null);
            }
            var used = s_usedFields.GetOrAdd(method, static m => ClosureFields.Find(m)?.ToDictionary(p => p.Key, p => p.Value.ToArray()));
            var fields = used is null ? type.GetFields(InstanceFields) : used.GetValueOrDefault(type) ?? [];
            return new ClosureWriter(Array.ConvertAll(fields, f => new FieldSlot(f)));
        }
    }

    /// <summary>How a closure type is read: its fields, found by their UTF-8 names.</summary>
    internal sealed class ClosureReader
    {
        private readonly FieldSlot[] _fields;
        private Func<object>? _create;

        public ClosureReader(Type type)
        {
            Type = type;
            IsClosure = ClosureFields.IsClosureType(type);
            _fields = IsClosure ? Array.ConvertAll(type.GetFields(InstanceFields), f => new FieldSlot(f)) : [];
        }

        public Type Type { get; }

        public bool IsClosure { get; }

        /// <summary>
        /// A new closure of this type, its fields unset. The compiler's closure classes have an empty parameterless
        /// constructor, which a compiled <c>newobj</c> runs for a fraction of what GetUninitializedObject costs the
        /// interpreter; any other type, or one the emitter refuses, is created uninitialized.
        /// </summary>
        public object Create()
        {
            PrepareCreate();
            return _create!();
        }

        /// <summary>
        /// Reads a closure whose captured values are all primitives in compact forms (the common case: <c>{"x": 41}</c>)
        /// straight from <paramref name="bytes"/>, without a MessagePackReader; false for anything else (a nested closure,
        /// another value type, a name this type does not have), which the reader-based path then reads or reports.
        /// </summary>
        public bool TryReadFlat(ReadOnlySpan<byte> bytes, out object? closure)
        {
            closure = null;
            if (!IsClosure || bytes.IsEmpty || (bytes[0] & 0xf0) != 0x80)
            {
                return false; // not a fixmap
            }
            var count = bytes[0] & 0x0f;
            var at = 1;
            object? created = null; // created at the first value that can be stored, so a fallback allocates nothing here
            for (var i = 0; i < count; i++)
            {
                if (at >= bytes.Length || (bytes[at] & 0xe0) != 0xa0)
                {
                    return false; // a name that is not a fixstr
                }
                var length = bytes[at] & 0x1f;
                if (at + 1 + length > bytes.Length)
                {
                    return false;
                }
                var slot = FindUtf8(bytes.Slice(at + 1, length), i);
                at += 1 + length;
                if (slot is null || slot.IsClosure || !slot.ValueReader.TryStore(bytes, ref at, created ??= Create()))
                {
                    return false;
                }
            }
            closure = created ?? Create();
            return true;
        }

        /// <summary>Works out how <see cref="Create"/> creates closures (compiling its constructor call) without creating one.</summary>
        public void PrepareCreate() => _create ??= CompileConstructor(Type) ?? (() => RuntimeHelpers.GetUninitializedObject(Type));

        /// <summary>True once <see cref="Create"/> has its way of creating closures (a warm-start template prepares it).</summary>
        public bool ConstructorIsReady => _create is not null;

        private static Func<object>? CompileConstructor(Type type)
        {
            if (!RuntimeFeature.IsDynamicCodeSupported || !ClosureFields.IsClosureType(type) || type.IsValueType || type.ContainsGenericParameters)
            {
                return null;
            }
            var constructor = type.GetConstructor(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, Type.EmptyTypes);
            if (constructor is null)
            {
                return null;
            }
            try
            {
                var method = new System.Reflection.Emit.DynamicMethod("new_" + type.Name, typeof(object), Type.EmptyTypes, type.Module, skipVisibility: true);
                var il = method.GetILGenerator();
                il.Emit(System.Reflection.Emit.OpCodes.Newobj, constructor);
                il.Emit(System.Reflection.Emit.OpCodes.Ret);
                return method.CreateDelegate<Func<object>>();
            }
            catch (Exception e) when (e is NotSupportedException or PlatformNotSupportedException or InvalidOperationException or ArgumentException)
            {
                return null;
            }
        }

        /// <summary>Reads a field name and returns its slot; the host writes fields in a stable order, so the <paramref name="index"/>-th is tried first.</summary>
        public FieldSlot Find(ref MessagePackReader reader, int index)
        {
            if (reader.NextMessagePackType != MessagePackType.String || !reader.TryReadStringSpan(out var name))
            {
                return FindByName(reader.ReadString() ?? "");
            }
            return FindUtf8(name, index) ?? throw NoSuchField(System.Text.Encoding.UTF8.GetString(name));
        }

        /// <summary>The slot whose UTF-8 name is <paramref name="name"/> (the <paramref name="index"/>-th tried first), or null.</summary>
        private FieldSlot? FindUtf8(ReadOnlySpan<byte> name, int index)
        {
            if (index < _fields.Length && name.SequenceEqual(_fields[index].Utf8Name))
            {
                return _fields[index];
            }
            foreach (var slot in _fields)
            {
                if (name.SequenceEqual(slot.Utf8Name))
                {
                    return slot;
                }
            }
            return null;
        }

        private FieldSlot FindByName(string name) => TryFind(name) ?? throw NoSuchField(name);

        /// <summary>The slot of the field named <paramref name="name"/>, or null.</summary>
        public FieldSlot? TryFind(string name)
        {
            foreach (var slot in _fields)
            {
                if (slot.Field.Name == name)
                {
                    return slot;
                }
            }
            return null;
        }

        private MessagePackSerializationException NoSuchField(string name) => new($"The closure {Type.FullName} has no field '{name}'.");
    }
}
